-- Nothing to do on SQLite: step 0011 changes the PostgreSQL function `ex_load` (see the
-- PostgreSQL migrations); SQLite reads a replace's crossing orders with its own statements.
SELECT 1;
