-- Nothing to do on SQLite: step 0014 adds the PostgreSQL function `ex_flush`, with which an
-- order writer there commits one batch and begins the next in one trip. SQLite runs in the
-- process, where a trip costs nothing, and commits and begins in turn.
SELECT 1;
