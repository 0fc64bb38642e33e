-- `ex_prefetch`: the first read of an order writer's batch. It takes every lock the batch
-- needs, in the one order every writer uses (accounts, then books, each by key), and reads in
-- one call everything the batch's orders will ask for, so the writer can decide them one by
-- one in memory (`store::exchange::mirror`) instead of calling `ex_load` once per order:
--   the game; the books named and the books of the orders named; each account's cash,
--   holdings (at their marks) and open orders per instrument and intent; the orders named;
--   for each crossing request, the first `c_limit` open orders on its side of its book at
--   `c_worst` or better; and `p_new_orders` ids for new orders.
-- A crossing request names its book and side, or (a replace, whose side the caller does not
-- know before reading it) an order, whose book and opposite side are meant.
--
-- Rows have `ex_load`'s shape (migration 0009) with these kinds:
--   k = 0  the game, as in ex_load (n10 is NULL)
--   k = 1  a book, as in ex_load
--   k = 2  an account: n1 cash, n2 account
--   k = 3  a holding: n1 instrument, n2 qty, n3 mark, n4 account
--   k = 4  open orders: n1 instrument, n2 open qty, n3 open value, n4 account; t1 intent
--   k = 5  an order, as in ex_load
--   k = 6  a crossing order: n1 id, n2 account, n3 price, n4 priority, n5 open qty,
--          n6 the request (1-based); t1 intent
--   k = 7  a crossing request resolved: n1 the request, n2 book, n3 worst, n4 limit; t1 side
--          (NULL when its order does not exist)
--   k = 8  an id for a new order: n1
CREATE FUNCTION ex_prefetch(
    p_game        BIGINT,
    p_accounts    BIGINT[],
    p_instruments BIGINT[],
    p_orders      BIGINT[],
    c_instrument  BIGINT[],  -- NULL where c_order names the book
    c_order       BIGINT[],
    c_side        TEXT[],    -- 'buy', 'sell', or 'opposite' (of c_order's side)
    c_worst       BIGINT[],
    c_limit       BIGINT[],
    p_new_orders  INTEGER
) RETURNS TABLE (
    k BIGINT, n1 BIGINT, n2 BIGINT, n3 BIGINT, n4 BIGINT, n5 BIGINT, n6 BIGINT, n7 BIGINT,
    n8 BIGINT, n9 BIGINT, n10 BIGINT, t1 TEXT, t2 TEXT, t3 TEXT, t4 TEXT
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_books BIGINT[];
    v_book BIGINT[];
    v_side TEXT[];
BEGIN
    -- An order never moves to another book or changes side, so these reads need no lock.
    v_books := ARRAY(
        SELECT DISTINCT b FROM (
            SELECT unnest(p_instruments) AS b
            UNION ALL
            SELECT o.instrument_id FROM ex_orders o WHERE o.id = ANY (p_orders)
        ) s
        WHERE b IS NOT NULL);
    -- Scalar subqueries, so each request looks its order up by key (a join here gets a
    -- generic plan that hashes the whole table).
    SELECT COALESCE(array_agg(COALESCE(c_instrument[x],
                                       (SELECT o.instrument_id FROM ex_orders o
                                        WHERE o.id = c_order[x])) ORDER BY x), '{}'),
           COALESCE(array_agg(CASE WHEN c_side[x] = 'opposite'
                                   THEN (SELECT CASE o.side WHEN 'buy' THEN 'sell'
                                                            WHEN 'sell' THEN 'buy' END
                                         FROM ex_orders o WHERE o.id = c_order[x])
                                   ELSE c_side[x] END ORDER BY x), '{}')
    INTO v_book, v_side
    FROM generate_series(1, cardinality(c_limit)) AS x;

    -- Accounts before books, each in key order, as every writer takes them (the keys are the
    -- ids modulo 2^31 - 1, as in `advisory_sql`, Rust): the aggregate takes the locks one by
    -- one in the order of the array.
    PERFORM count(pg_advisory_xact_lock(1314390018, u.key))
    FROM unnest(ARRAY(SELECT DISTINCT (a % 2147483647)::INTEGER
                      FROM unnest(p_accounts) AS a ORDER BY 1)) AS u(key);
    PERFORM count(pg_advisory_xact_lock(1314390017, u.key))
    FROM unnest(ARRAY(SELECT DISTINCT (b % 2147483647)::INTEGER
                      FROM unnest(v_books) AS b ORDER BY 1)) AS u(key);

    RETURN QUERY
        SELECT 0::BIGINT, g.id, g.starting_cash, g.initial_margin_bp, g.maint_long_bp,
               g.maint_short_bp, g.borrow_fee_bp_day, g.fee_bp, g.collar_bp,
               (SELECT a.id FROM ex_accounts a WHERE a.game_id = g.id AND a.is_house = 1),
               NULL::BIGINT, g.name, g.status, g.stp_default, NULL::TEXT
        FROM ex_games g WHERE g.id = p_game;

    RETURN QUERY
        SELECT 1::BIGINT, i.id, i.game_id, i.tick, i.shares_issued, i.last_price,
               i.next_priority, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               i.symbol, i.name, i.profile, NULL::TEXT
        FROM ex_instruments i WHERE i.id = ANY (v_books);

    RETURN QUERY
        SELECT 2::BIGINT, a.cash, a.id, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM ex_accounts a WHERE a.id = ANY (p_accounts);
    RETURN QUERY
        SELECT 3::BIGINT, p.instrument_id, p.qty, i.last_price, p.account_id, NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM unnest(p_accounts) AS a(id)
        CROSS JOIN LATERAL (SELECT p.* FROM ex_positions p
                            WHERE p.account_id = a.id AND p.qty <> 0
                            OFFSET 0) AS p  -- not pulled up: one index walk per account
        JOIN ex_instruments i ON i.id = p.instrument_id;
    -- Per account, so each walks its own entries of the account index.
    RETURN QUERY
        SELECT 4::BIGINT, o.instrument_id, o.q, o.v, a.id,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::BIGINT, o.intent, NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM unnest(p_accounts) AS a(id)
        CROSS JOIN LATERAL (
            SELECT o.instrument_id, o.intent, SUM(o.qty - o.filled)::BIGINT AS q,
                   SUM((o.qty - o.filled) * COALESCE(o.price, 0))::BIGINT AS v
            FROM ex_orders o WHERE o.account_id = a.id AND o.status = 'open'
            GROUP BY o.instrument_id, o.intent) AS o;

    RETURN QUERY
        SELECT 5::BIGINT, o.id, o.instrument_id, o.account_id, o.price, o.qty, o.filled,
               o.priority, o.created_at, NULL::BIGINT, NULL::BIGINT,
               o.side, o.intent, o.tif, o.status
        FROM ex_orders o WHERE o.id = ANY (p_orders);

    RETURN QUERY
        SELECT 7::BIGINT, x::BIGINT, v_book[x], c_worst[x], c_limit[x], NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               v_side[x], NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM generate_series(1, cardinality(c_limit)) AS x;

    -- Per request, one side's partial index walked in its own direction up to the limit; the
    -- other side's subquery stops at its constant test.
    RETURN QUERY
        SELECT 6::BIGINT, r.id, r.account_id, r.price, r.priority, r.open_qty, x::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               r.intent, NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM generate_series(1, cardinality(c_limit)) AS x
        CROSS JOIN LATERAL (
            (SELECT o.id, o.account_id, o.price, o.priority, o.qty - o.filled AS open_qty,
                    o.intent
             FROM ex_orders o
             WHERE v_side[x] = 'sell' AND o.instrument_id = v_book[x] AND o.side = 'sell'
               AND o.status = 'open' AND o.price <= c_worst[x]
             ORDER BY o.price ASC, o.priority ASC LIMIT c_limit[x])
            UNION ALL
            (SELECT o.id, o.account_id, o.price, o.priority, o.qty - o.filled AS open_qty,
                    o.intent
             FROM ex_orders o
             WHERE v_side[x] = 'buy' AND o.instrument_id = v_book[x] AND o.side = 'buy'
               AND o.status = 'open' AND o.price >= c_worst[x]
             ORDER BY o.price DESC, o.priority ASC LIMIT c_limit[x])
        ) AS r;

    RETURN QUERY
        SELECT 8::BIGINT, nextval(pg_get_serial_sequence('ex_orders', 'id')), NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
        FROM generate_series(1, p_new_orders);
END
$$;

-- `ex_write` (migration 0009) updates the resting orders a trade filled with one statement
-- joined to the array of their ids. Its plan is made once per connection, and a connection
-- that first writes while `ex_orders` is small keeps a plan that hashes the whole table for
-- every later write (measured: a sequential scan of the table in every second write of the
-- order writer, on a table of 6,000 orders). Every statement in it finds its rows by key, so
-- it plans without sequential scans.
ALTER FUNCTION ex_write SET enable_seqscan = off;
