-- Nothing to do on SQLite: step 0012 adds the PostgreSQL function `ex_prefetch`, the first
-- read of an order writer's batch there. SQLite runs in the process, where a read costs no
-- round trip, and its batches keep reading order by order.
SELECT 1;
