-- `ex_flush`: lets an order writer commit one batch and begin the next in one trip (see
-- `store::exchange::tx`, `WriteTx::commit_and_begin`). The trip's text is the batch's write,
-- `COMMIT`, a marker row, `SELECT ex_flush()`, then `BEGIN` and the next batch's reads. The
-- server sends a simple query's results only when the whole text has run, or when a notice is
-- raised: it writes each notice to the client at once with everything before it. So the
-- writer sees the marker, and answers the batch it committed, while the server is still
-- reading for the next one. Level INFO always reaches the client (whatever
-- client_min_messages says); sqlx logs it at trace.
CREATE FUNCTION ex_flush() RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    RAISE INFO 'ex_flush';
    RETURN 1;
END
$$;
