-- Nothing to do on SQLite: step 0016 sets how the PostgreSQL exchange functions scan.
SELECT 1;
