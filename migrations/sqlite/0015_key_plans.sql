-- Nothing to do on SQLite: step 0015 sets how the PostgreSQL exchange functions plan.
SELECT 1;
