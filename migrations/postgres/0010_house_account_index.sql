-- Every order reads its game's house account (fees go to it). Without an index that lookup
-- walked all of the game's accounts: with 10,000 players it cost about 1.7 ms per order on
-- PostgreSQL, most of a simulation tick. A game has exactly one house account.
CREATE UNIQUE INDEX ex_accounts_house ON ex_accounts (game_id) WHERE is_house = 1;
