-- Nothing to do on SQLite: step 0013 adds the PostgreSQL function `ex_write_batch`, the one
-- write of an order writer's planned batch there. SQLite runs in the process, where a
-- statement costs no round trip, and its batches keep writing order by order.
SELECT 1;
