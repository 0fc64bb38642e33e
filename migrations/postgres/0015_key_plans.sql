-- The exchange's functions keep one generic plan per statement per connection, made at the
-- connection's first call. A connection that first calls them while the tables are nearly
-- empty (a new database, a new season) plans for tables of a row or two, and keeps those
-- plans until an autoanalyze replans them, a minute or more later. Measured (auto_explain, an
-- order writer begun on an empty database): `ex_prefetch` read crossing orders by scanning
-- the table (0.73 ms a call, against 0.03 ms planned on a filled table), and
-- `ex_write_batch`'s fill update hashed every order through the primary key's index (0.65
-- ms, against 0.08) although migration 0013 had turned sequential scans off for it.
-- Every statement in these functions touches a few rows, found by key or by an index's
-- range and joined to arrays of a few elements, so they plan without sequential scans, hash
-- joins or merge joins whatever the tables held when the plan was made. (Two picks remain
-- that only statistics settle: a cold plan may sum an account's open orders, or find a
-- batch's cancelled orders, by walking the open-order book index instead of the account
-- index or the primary key; the first autoanalyze replans them.)
ALTER FUNCTION ex_load SET enable_seqscan = off;
ALTER FUNCTION ex_load SET enable_hashjoin = off;
ALTER FUNCTION ex_load SET enable_mergejoin = off;
ALTER FUNCTION ex_prefetch SET enable_seqscan = off;
ALTER FUNCTION ex_prefetch SET enable_hashjoin = off;
ALTER FUNCTION ex_prefetch SET enable_mergejoin = off;
ALTER FUNCTION ex_write SET enable_hashjoin = off;
ALTER FUNCTION ex_write SET enable_mergejoin = off;
ALTER FUNCTION ex_write_batch SET enable_hashjoin = off;
ALTER FUNCTION ex_write_batch SET enable_mergejoin = off;
