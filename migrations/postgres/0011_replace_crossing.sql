-- `ex_load` (migration 0009) learns to read the crossing orders of a replace in the same round
-- trip: p_side = 'opposite' reads the side opposite the order p_order's, so a replace, whose
-- caller does not know the order's side before the load, needs no second query for them.
-- Everything else is as in 0009.

CREATE OR REPLACE FUNCTION ex_load(
    p_game          BIGINT,
    p_instrument    BIGINT,   -- NULL: the book of p_order
    p_lock_account  BIGINT,   -- NULL: no account lock
    p_view_account  BIGINT,   -- NULL: no account rows
    p_order         BIGINT,   -- NULL: no order row
    p_new_order     BOOLEAN,  -- hand out the id of a new order
    p_side          TEXT,     -- NULL: no crossing orders; else the side to read them from,
                              -- or 'opposite': the side opposite p_order's
    p_worst         BIGINT,   -- the worst price still crossing
    p_limit         BIGINT    -- at most this many crossing orders
) RETURNS TABLE (
    k BIGINT, n1 BIGINT, n2 BIGINT, n3 BIGINT, n4 BIGINT, n5 BIGINT, n6 BIGINT, n7 BIGINT,
    n8 BIGINT, n9 BIGINT, n10 BIGINT, t1 TEXT, t2 TEXT, t3 TEXT, t4 TEXT
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    v_instrument BIGINT := p_instrument;
    v_side TEXT := p_side;
BEGIN
    IF p_order IS NOT NULL AND (v_instrument IS NULL OR p_side = 'opposite') THEN
        -- An order never moves to another book or changes side, so this read needs no lock.
        SELECT COALESCE(v_instrument, o.instrument_id),
               CASE WHEN p_side = 'opposite'
                    THEN CASE o.side WHEN 'buy' THEN 'sell' ELSE 'buy' END
                    ELSE p_side END
        INTO v_instrument, v_side
        FROM ex_orders o WHERE o.id = p_order;
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
    IF v_side = 'sell' THEN
        RETURN QUERY
            SELECT 6::BIGINT, o.id, o.account_id, o.price, o.priority, o.qty - o.filled,
                   NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
                   NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT
            FROM ex_orders o
            WHERE o.instrument_id = v_instrument AND o.side = 'sell' AND o.status = 'open'
              AND o.price <= p_worst
            ORDER BY o.price ASC, o.priority ASC LIMIT p_limit;
    ELSIF v_side = 'buy' THEN
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
