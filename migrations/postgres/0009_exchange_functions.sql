-- The exchange's order path as two server-side functions, so that an order costs two round
-- trips (read, then write and commit) and the server plans its statements once per connection
-- instead of once per order (PL/pgSQL caches the plan of every statement it runs).
--
-- The functions make no decisions. `ex_load` takes the transaction's locks and reads what the
-- engine needs; the engine (Rust: matching, risk) decides; `ex_write` writes exactly what it
-- was given. Both run inside the caller's transaction (`BEGIN; SELECT * FROM ex_load(...)` and
-- `SELECT * FROM ex_write(...); COMMIT`), and both are VOLATILE, so under READ COMMITTED every
-- statement in them takes a fresh snapshot: the reads after the advisory locks see whatever
-- the previous holder of the locks committed.
--
-- Both force generic plans: their statements take array lengths, limits and prices as
-- parameters, and with the default plan cache mode the server compares each call's custom
-- plan with the generic one and may keep planning anew every call (the point of the
-- functions is to plan once per connection; the generic plans walk the same indexes).

-- Takes the locks of one write transaction and reads what it needs, as rows of one shape:
--   k = 0  the game: n1 id, n2 starting_cash, n3 initial_margin_bp, n4 maint_long_bp,
--          n5 maint_short_bp, n6 borrow_fee_bp_day, n7 fee_bp, n8 collar_bp, n9 house account,
--          n10 the id of the new order (when p_new_order); t1 name, t2 status, t3 stp_default
--   k = 1  the book: n1 id, n2 game_id, n3 tick, n4 shares_issued, n5 last_price,
--          n6 next_priority; t1 symbol, t2 name, t3 profile
--   k = 2  the viewed account's cash: n1
--   k = 3  one of its holdings: n1 instrument, n2 qty, n3 mark (last price)
--   k = 4  its open orders per instrument and intent: n1 instrument, n2 open qty,
--          n3 open value, t1 intent
--   k = 5  the order p_order: n1 id, n2 instrument, n3 account, n4 price, n5 qty, n6 filled,
--          n7 priority, n8 created_at; t1 side, t2 intent, t3 tif, t4 status
--   k = 6  crossing orders on side p_side, best first: n1 id, n2 account, n3 price,
--          n4 priority, n5 open qty
-- Locks (transaction-scoped advisory locks, the same keys as `store::exchange::tx`): the
-- account p_lock_account first, then the book (p_instrument, or the book of p_order).
CREATE FUNCTION ex_load(
    p_game          BIGINT,
    p_instrument    BIGINT,   -- NULL: the book of p_order
    p_lock_account  BIGINT,   -- NULL: no account lock
    p_view_account  BIGINT,   -- NULL: no account rows
    p_order         BIGINT,   -- NULL: no order row
    p_new_order     BOOLEAN,  -- hand out the id of a new order
    p_side          TEXT,     -- NULL: no crossing orders; else the side to read them from
    p_worst         BIGINT,   -- the worst price still crossing
    p_limit         BIGINT    -- at most this many crossing orders
) RETURNS TABLE (
    k BIGINT, n1 BIGINT, n2 BIGINT, n3 BIGINT, n4 BIGINT, n5 BIGINT, n6 BIGINT, n7 BIGINT,
    n8 BIGINT, n9 BIGINT, n10 BIGINT, t1 TEXT, t2 TEXT, t3 TEXT, t4 TEXT
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_instrument BIGINT := p_instrument;
BEGIN
    IF v_instrument IS NULL AND p_order IS NOT NULL THEN
        -- An order never moves to another book, so this read needs no lock.
        SELECT o.instrument_id INTO v_instrument FROM ex_orders o WHERE o.id = p_order;
    END IF;
    -- Accounts before books, always, so lock waits cannot form a cycle. The keys are the ids
    -- modulo 2^31 - 1, as in `advisory_sql` (Rust).
    IF p_lock_account IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1314390018, (p_lock_account % 2147483647)::INTEGER);
    END IF;
    IF v_instrument IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(1314390017, (v_instrument % 2147483647)::INTEGER);
    END IF;

    RETURN QUERY
        SELECT 0::BIGINT, g.id, g.starting_cash, g.initial_margin_bp, g.maint_long_bp,
               g.maint_short_bp, g.borrow_fee_bp_day, g.fee_bp, g.collar_bp,
               (SELECT a.id FROM ex_accounts a WHERE a.game_id = g.id AND a.is_house = 1),
               CASE WHEN p_new_order
                    THEN nextval(pg_get_serial_sequence('ex_orders', 'id')) END,
               g.name, g.status, g.stp_default, NULL::TEXT
        FROM ex_games g WHERE g.id = p_game;

    IF v_instrument IS NOT NULL THEN
        RETURN QUERY
            SELECT 1::BIGINT, i.id, i.game_id, i.tick, i.shares_issued, i.last_price,
                   i.next_priority, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   i.symbol, i.name, i.profile, NULL::TEXT
            FROM ex_instruments i WHERE i.id = v_instrument;
    END IF;

    IF p_view_account IS NOT NULL THEN
        RETURN QUERY
            SELECT 2::BIGINT, a.cash, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_accounts a WHERE a.id = p_view_account;
        RETURN QUERY
            SELECT 3::BIGINT, p.instrument_id, p.qty, i.last_price, NULL::BIGINT, NULL::BIGINT,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_positions p JOIN ex_instruments i ON i.id = p.instrument_id
            WHERE p.account_id = p_view_account AND p.qty <> 0;
        RETURN QUERY
            SELECT 4::BIGINT, o.instrument_id, SUM(o.qty - o.filled)::BIGINT,
                   SUM((o.qty - o.filled) * COALESCE(o.price, 0))::BIGINT, NULL::BIGINT,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::BIGINT, o.intent, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_orders o WHERE o.account_id = p_view_account AND o.status = 'open'
            GROUP BY o.instrument_id, o.intent;
    END IF;

    IF p_order IS NOT NULL THEN
        RETURN QUERY
            SELECT 5::BIGINT, o.id, o.instrument_id, o.account_id, o.price, o.qty, o.filled,
                   o.priority, o.created_at, NULL::BIGINT, NULL::BIGINT,
                   o.side, o.intent, o.tif, o.status
            FROM ex_orders o WHERE o.id = p_order;
    END IF;

    -- Two statements rather than one with a computed ORDER BY, so each walks the book's
    -- partial index in its own direction and stops at the limit.
    IF p_side = 'sell' THEN
        RETURN QUERY
            SELECT 6::BIGINT, o.id, o.account_id, o.price, o.priority, o.qty - o.filled,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_orders o
            WHERE o.instrument_id = v_instrument AND o.side = 'sell' AND o.status = 'open'
              AND o.price <= p_worst
            ORDER BY o.price ASC, o.priority ASC LIMIT p_limit;
    ELSIF p_side = 'buy' THEN
        RETURN QUERY
            SELECT 6::BIGINT, o.id, o.account_id, o.price, o.priority, o.qty - o.filled,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_orders o
            WHERE o.instrument_id = v_instrument AND o.side = 'buy' AND o.status = 'open'
              AND o.price >= p_worst
            ORDER BY o.price DESC, o.priority ASC LIMIT p_limit;
    END IF;
END
$$;

-- Writes everything one transaction of a book decided, in the caller's transaction, and
-- returns the ids of the new trades in order. Ledger and event rows name a trade by its
-- position in the t_* arrays (1-based; NULL for none), because the ids are handed out here.
-- Cash and share deltas arrive netted per row and sorted by key, and are applied in that
-- order, so two transactions never wait on each other's account rows in a cycle.
CREATE FUNCTION ex_write(
    p_game BIGINT, p_instrument BIGINT, p_now BIGINT,
    -- The order row: p_order_mode 0 = none, 1 = insert, 2 = update.
    p_order_mode INTEGER, p_order BIGINT, p_account BIGINT, p_side TEXT, p_intent TEXT,
    p_kind TEXT, p_tif TEXT, p_price BIGINT, p_qty BIGINT, p_filled BIGINT, p_status TEXT,
    p_reason TEXT, p_priority BIGINT,
    -- The book's counters; NULL last price leaves the instrument row alone.
    p_last_price BIGINT, p_next_priority BIGINT,
    -- Trades.
    t_price BIGINT[], t_qty BIGINT[], t_buy BIGINT[], t_sell BIGINT[], t_side TEXT[],
    -- Resting orders filled (order, shares) and cancelled by self-trade prevention.
    f_order BIGINT[], f_qty BIGINT[], c_order BIGINT[], c_reason TEXT[],
    -- Share and cash deltas.
    s_account BIGINT[], s_instrument BIGINT[], s_delta BIGINT[],
    m_account BIGINT[], m_delta BIGINT[],
    -- Ledger rows.
    l_account BIGINT[], l_instrument BIGINT[], l_cash BIGINT[], l_share BIGINT[],
    l_reason TEXT[], l_trade BIGINT[],
    -- Events.
    e_kind TEXT[], e_account BIGINT[], e_instrument BIGINT[], e_order BIGINT[],
    e_trade BIGINT[], e_price BIGINT[], e_qty BIGINT[], e_detail TEXT[]
) RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ids BIGINT[] := '{}';
BEGIN
    IF p_order_mode = 1 THEN
        INSERT INTO ex_orders (id, game_id, instrument_id, account_id, side, intent, kind, tif,
                               price, qty, filled, status, reason, priority, created_at,
                               updated_at)
        VALUES (p_order, p_game, p_instrument, p_account, p_side, p_intent, p_kind, p_tif,
                p_price, p_qty, p_filled, p_status, p_reason, p_priority, p_now, p_now);
    ELSIF p_order_mode = 2 THEN
        UPDATE ex_orders SET price = p_price, qty = p_qty, filled = p_filled,
                             status = p_status, reason = p_reason, priority = p_priority,
                             updated_at = p_now
        WHERE id = p_order;
    END IF;

    IF cardinality(t_price) > 0 THEN
        ids := ARRAY(SELECT nextval(pg_get_serial_sequence('ex_trades', 'id'))
                     FROM generate_series(1, cardinality(t_price)));
        INSERT INTO ex_trades (id, game_id, instrument_id, price, qty, buy_order_id,
                               sell_order_id, taker_side, created_at)
        SELECT ids[x], p_game, p_instrument, t_price[x], t_qty[x], t_buy[x], t_sell[x],
               t_side[x], p_now
        FROM generate_series(1, cardinality(t_price)) AS x ORDER BY x;
    END IF;

    IF cardinality(f_order) > 0 THEN
        UPDATE ex_orders o
        SET filled = o.filled + f.q,
            status = CASE WHEN o.filled + f.q >= o.qty THEN 'filled' ELSE o.status END,
            updated_at = p_now
        FROM unnest(f_order, f_qty) AS f(id, q)
        WHERE o.id = f.id;
    END IF;

    IF cardinality(c_order) > 0 THEN
        UPDATE ex_orders o SET status = 'cancelled', reason = c.r, updated_at = p_now
        FROM unnest(c_order, c_reason) AS c(id, r)
        WHERE o.id = c.id AND o.status = 'open';
    END IF;

    IF p_last_price IS NOT NULL THEN
        UPDATE ex_instruments SET last_price = p_last_price, next_priority = p_next_priority
        WHERE id = p_instrument;
    END IF;

    FOR x IN 1 .. cardinality(s_account) LOOP
        INSERT INTO ex_positions (account_id, instrument_id, qty)
        VALUES (s_account[x], s_instrument[x], s_delta[x])
        ON CONFLICT (account_id, instrument_id)
        DO UPDATE SET qty = ex_positions.qty + excluded.qty;
    END LOOP;

    FOR x IN 1 .. cardinality(m_account) LOOP
        UPDATE ex_accounts SET cash = cash + m_delta[x] WHERE id = m_account[x];
    END LOOP;

    IF cardinality(l_account) > 0 THEN
        INSERT INTO ex_ledger (game_id, account_id, instrument_id, cash_delta, share_delta,
                               reason, trade_id, created_at)
        SELECT p_game, l_account[x], l_instrument[x], l_cash[x], l_share[x], l_reason[x],
               ids[l_trade[x]], p_now
        FROM generate_series(1, cardinality(l_account)) AS x ORDER BY x;
    END IF;

    IF cardinality(e_kind) > 0 THEN
        INSERT INTO ex_events (game_id, kind, account_id, instrument_id, order_id, trade_id,
                               price, qty, detail, created_at)
        SELECT p_game, e_kind[x], e_account[x], e_instrument[x], e_order[x], ids[e_trade[x]],
               e_price[x], e_qty[x], e_detail[x], p_now
        FROM generate_series(1, cardinality(e_kind)) AS x ORDER BY x;
    END IF;

    RETURN QUERY SELECT unnest(ids);
END
$$;
