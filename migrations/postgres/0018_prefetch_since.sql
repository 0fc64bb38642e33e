-- `ex_prefetch_since`: the order writer's first read of a batch when it still holds what the
-- batch before it read and wrote (`store::exchange::mirror`, carried over). It takes every
-- lock of the whole batch, as `ex_prefetch` does (accounts, then books, each by key), and
-- then asks whether any transaction but the writer's own has committed since that batch took
-- its snapshot `p_since` (its own transaction id being `p_since_xid`):
--   every transaction in progress then, and every one begun since (at most 64 of them, or the
--   answer is yes), is still in progress now or was rolled back.
-- If none has, the carried picture is still what the database says, and only the `d_` lists
-- (what the picture does not know) are read; otherwise the full lists are. Either way the
-- reads are `ex_prefetch`'s (its locks, a subset of those already held, are taken again at
-- no wait), after one row of kind 9: n1 1 if the `d_` lists were read, 0 if the full ones;
-- n2 this transaction's id, taken here; t1 the snapshot taken after the locks, before any
-- read, for the next batch to ask about. `p_since` NULL: nothing is carried; the full lists.
CREATE FUNCTION ex_prefetch_since(
    p_since       TEXT,
    p_since_xid   BIGINT,
    p_game        BIGINT,
    p_accounts    BIGINT[],
    p_instruments BIGINT[],
    p_orders      BIGINT[],
    c_instrument  BIGINT[],
    c_order       BIGINT[],
    c_side        TEXT[],
    c_worst       BIGINT[],
    c_limit       BIGINT[],
    d_accounts    BIGINT[],
    d_instruments BIGINT[],
    d_orders      BIGINT[],
    dc_instrument BIGINT[],
    dc_order      BIGINT[],
    dc_side       TEXT[],
    dc_worst      BIGINT[],
    dc_limit      BIGINT[],
    p_new_orders  INTEGER
) RETURNS TABLE (
    k BIGINT, n1 BIGINT, n2 BIGINT, n3 BIGINT, n4 BIGINT, n5 BIGINT, n6 BIGINT, n7 BIGINT,
    n8 BIGINT, n9 BIGINT, n10 BIGINT, t1 TEXT, t2 TEXT, t3 TEXT, t4 TEXT
) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
    v_books BIGINT[];
    v_xid   BIGINT;
    v_now   pg_snapshot;
    v_since pg_snapshot;
    v_quiet BOOLEAN := FALSE;
BEGIN
    v_books := ARRAY(
        SELECT DISTINCT b FROM (
            SELECT unnest(p_instruments) AS b
            UNION ALL
            SELECT o.instrument_id FROM ex_orders o WHERE o.id = ANY (p_orders)
        ) s
        WHERE b IS NOT NULL);
    PERFORM count(pg_advisory_xact_lock(1314390018, u.key))
    FROM unnest(ARRAY(SELECT DISTINCT (a % 2147483647)::INTEGER
                      FROM unnest(p_accounts) AS a ORDER BY 1)) AS u(key);
    PERFORM count(pg_advisory_xact_lock(1314390017, u.key))
    FROM unnest(ARRAY(SELECT DISTINCT (b % 2147483647)::INTEGER
                      FROM unnest(v_books) AS b ORDER BY 1)) AS u(key);

    -- The id first, so that the snapshot (which leaves out this transaction) comes after it.
    v_xid := pg_current_xact_id()::TEXT::BIGINT;
    v_now := pg_current_snapshot();
    IF p_since IS NOT NULL THEN
        v_since := p_since::pg_snapshot;
        IF pg_snapshot_xmax(v_now)::TEXT::BIGINT - pg_snapshot_xmax(v_since)::TEXT::BIGINT
           <= 64 THEN
            SELECT COALESCE(bool_and(NOT pg_visible_in_snapshot(x, v_now)
                                     OR COALESCE(pg_xact_status(x) = 'aborted', FALSE)),
                            TRUE)
            INTO v_quiet
            FROM (SELECT pg_snapshot_xip(v_since) AS x
                  UNION ALL
                  SELECT s::TEXT::xid8
                  FROM generate_series(pg_snapshot_xmax(v_since)::TEXT::BIGINT,
                                       pg_snapshot_xmax(v_now)::TEXT::BIGINT - 1) AS s) c
            WHERE x::TEXT::BIGINT NOT IN (p_since_xid, v_xid);
        END IF;
    END IF;

    RETURN QUERY
        SELECT 9::BIGINT, v_quiet::INTEGER::BIGINT, v_xid, NULL::BIGINT, NULL::BIGINT,
               NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT,
               NULL::BIGINT, v_now::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT;
    IF v_quiet THEN
        RETURN QUERY SELECT * FROM ex_prefetch(p_game, d_accounts, d_instruments, d_orders,
            dc_instrument, dc_order, dc_side, dc_worst, dc_limit, p_new_orders);
    ELSE
        RETURN QUERY SELECT * FROM ex_prefetch(p_game, p_accounts, p_instruments, p_orders,
            c_instrument, c_order, c_side, c_worst, c_limit, p_new_orders);
    END IF;
END
$$;
