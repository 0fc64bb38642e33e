-- `ex_write_batch`: the one write of an order writer's planned batch (see
-- `store::exchange::script`). `ex_write` (migration 0009) writes one order's transaction with
-- about ten statements; a batch of sixteen orders called it sixteen times, and each statement
-- costs the server its executor start-up whatever its rows. This function takes everything the
-- batch's orders decided, netted in Rust so that each row appears once, and writes it with the
-- same ten statements for any number of orders:
--   o_*  orders placed in the batch, as they stand at its end (fills and cancels by later
--        orders of the batch already applied);
--   u_*  orders replaced in the batch, likewise (their new price, size, fill and priority);
--   f_*  resting orders from before the batch that it filled (shares, summed), and c_* those
--        it cancelled (self-trade prevention, a cancel); fills are applied first;
--   b_*  each book's last price and priority counter at the end of the batch;
--   t_*  the trades in the order they happened, each with its game and book;
--   s_*  share deltas netted per (account, book), sorted; m_* cash deltas netted per account,
--        sorted (applied one by one, in that order, so two writers never wait on each other's
--        account rows in a cycle);
--   l_*  ledger rows and e_* events in the order they happened, naming a trade by its
--        position in t_* (1-based; NULL for none).
-- Returns the new trades' ids in the order of t_*.
CREATE FUNCTION ex_write_batch(
    p_now BIGINT,
    o_id BIGINT[], o_game BIGINT[], o_instrument BIGINT[], o_account BIGINT[], o_side TEXT[],
    o_intent TEXT[], o_kind TEXT[], o_tif TEXT[], o_price BIGINT[], o_qty BIGINT[],
    o_filled BIGINT[], o_status TEXT[], o_reason TEXT[], o_priority BIGINT[],
    u_id BIGINT[], u_price BIGINT[], u_qty BIGINT[], u_filled BIGINT[], u_status TEXT[],
    u_reason TEXT[], u_priority BIGINT[],
    f_order BIGINT[], f_qty BIGINT[], c_order BIGINT[], c_reason TEXT[],
    b_instrument BIGINT[], b_last BIGINT[], b_next BIGINT[],
    t_game BIGINT[], t_instrument BIGINT[], t_price BIGINT[], t_qty BIGINT[], t_buy BIGINT[],
    t_sell BIGINT[], t_side TEXT[],
    s_account BIGINT[], s_instrument BIGINT[], s_delta BIGINT[],
    m_account BIGINT[], m_delta BIGINT[],
    l_game BIGINT[], l_account BIGINT[], l_instrument BIGINT[], l_cash BIGINT[],
    l_share BIGINT[], l_reason TEXT[], l_trade BIGINT[],
    e_game BIGINT[], e_kind TEXT[], e_account BIGINT[], e_instrument BIGINT[], e_order BIGINT[],
    e_trade BIGINT[], e_price BIGINT[], e_qty BIGINT[], e_detail TEXT[]
) RETURNS SETOF BIGINT LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan AS $$
DECLARE
    ids BIGINT[] := '{}';
BEGIN
    IF cardinality(o_id) > 0 THEN
        INSERT INTO ex_orders (id, game_id, instrument_id, account_id, side, intent, kind, tif,
                               price, qty, filled, status, reason, priority, created_at,
                               updated_at)
        SELECT o_id[x], o_game[x], o_instrument[x], o_account[x], o_side[x], o_intent[x],
               o_kind[x], o_tif[x], o_price[x], o_qty[x], o_filled[x], o_status[x],
               o_reason[x], o_priority[x], p_now, p_now
        FROM generate_series(1, cardinality(o_id)) AS x ORDER BY x;
    END IF;

    IF cardinality(u_id) > 0 THEN
        UPDATE ex_orders o
        SET price = u.price, qty = u.qty, filled = u.filled, status = u.status,
            reason = u.reason, priority = u.priority, updated_at = p_now
        FROM unnest(u_id, u_price, u_qty, u_filled, u_status, u_reason, u_priority)
             AS u(id, price, qty, filled, status, reason, priority)
        WHERE o.id = u.id;
    END IF;

    IF cardinality(t_price) > 0 THEN
        ids := ARRAY(SELECT nextval(pg_get_serial_sequence('ex_trades', 'id'))
                     FROM generate_series(1, cardinality(t_price)));
        INSERT INTO ex_trades (id, game_id, instrument_id, price, qty, buy_order_id,
                               sell_order_id, taker_side, created_at)
        SELECT ids[x], t_game[x], t_instrument[x], t_price[x], t_qty[x], t_buy[x], t_sell[x],
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

    IF cardinality(b_instrument) > 0 THEN
        UPDATE ex_instruments i SET last_price = b.last, next_priority = b.next
        FROM unnest(b_instrument, b_last, b_next) AS b(id, last, next)
        WHERE i.id = b.id;
    END IF;

    -- Share rows are only ever written under their book's lock, so one statement may take
    -- them in any order.
    IF cardinality(s_account) > 0 THEN
        INSERT INTO ex_positions (account_id, instrument_id, qty)
        SELECT s_account[x], s_instrument[x], s_delta[x]
        FROM generate_series(1, cardinality(s_account)) AS x ORDER BY x
        ON CONFLICT (account_id, instrument_id)
        DO UPDATE SET qty = ex_positions.qty + excluded.qty;
    END IF;

    FOR x IN 1 .. cardinality(m_account) LOOP
        UPDATE ex_accounts SET cash = cash + m_delta[x] WHERE id = m_account[x];
    END LOOP;

    IF cardinality(l_account) > 0 THEN
        INSERT INTO ex_ledger (game_id, account_id, instrument_id, cash_delta, share_delta,
                               reason, trade_id, created_at)
        SELECT l_game[x], l_account[x], l_instrument[x], l_cash[x], l_share[x], l_reason[x],
               ids[l_trade[x]], p_now
        FROM generate_series(1, cardinality(l_account)) AS x ORDER BY x;
    END IF;

    IF cardinality(e_kind) > 0 THEN
        INSERT INTO ex_events (game_id, kind, account_id, instrument_id, order_id, trade_id,
                               price, qty, detail, created_at)
        SELECT e_game[x], e_kind[x], e_account[x], e_instrument[x], e_order[x],
               ids[e_trade[x]], e_price[x], e_qty[x], e_detail[x], p_now
        FROM generate_series(1, cardinality(e_kind)) AS x ORDER BY x;
    END IF;

    RETURN QUERY SELECT unnest(ids);
END
$$;

-- Every statement finds its rows by key (see the note on `ex_write` in migration 0012).
ALTER FUNCTION ex_write_batch SET enable_seqscan = off;
