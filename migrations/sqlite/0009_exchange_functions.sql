-- Nothing to do on SQLite. On PostgreSQL this step adds the server-side functions `ex_load` and
-- `ex_write` of the exchange's order path (round trips cost more there); SQLite runs in the
-- process, so its order path keeps sending the statements one by one. The step exists so both
-- backends keep the same step numbers.
SELECT 1;
