-- Nothing to do on SQLite: step 0018 adds the PostgreSQL function `ex_prefetch_since`. On
-- SQLite the order writer tells that nobody else wrote between its batches by the
-- connection's `PRAGMA data_version` instead.
SELECT 1;
