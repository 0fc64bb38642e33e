-- The exchange's functions read open orders by index scans, never bitmap scans.
--
-- A status change cannot be a heap-only update (`status` is in `ex_orders_account` and in
-- `ex_orders_book`'s predicate), so every order that leaves the book leaves behind an index
-- entry that still reads 'open' and points at a dead row version, until a vacuum. A plain
-- index scan that meets such an entry marks it dead in the index, and later scans skip it; a
-- bitmap scan cannot, so it visits every one of them again. Generic plans summed an
-- account's open orders (`ex_prefetch`, `ex_load`) with a bitmap scan of `ex_orders_account`.
-- Measured, the order writer at 8 clients for 40 s on a new database (no vacuum ran yet):
-- with bitmap scans 1,141 index entries read per account's sums, for fewer than 40 open
-- orders, and 1,269 orders a second; with index scans 31 entries and 2,065 orders a second.
-- The bitmap scans' cost grows with every order a season has seen since the last vacuum.
ALTER FUNCTION ex_load SET enable_bitmapscan = off;
ALTER FUNCTION ex_prefetch SET enable_bitmapscan = off;
ALTER FUNCTION ex_write SET enable_bitmapscan = off;
ALTER FUNCTION ex_write_batch SET enable_bitmapscan = off;
