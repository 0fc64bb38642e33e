-- Nothing to do on SQLite: step 0017 changes how the PostgreSQL exchange functions draw ids.
SELECT 1;
