-- The news wire is followed by the tick that published each item: an earnings report is
-- scheduled (and numbered) long before it is published, so ids do not follow publication
-- order, but ticks do (tick n+1 is claimed only after tick n is finished).
CREATE INDEX mk_news_published ON mk_news (game_id, tick);

-- A game's market calendar (time zone, sessions, closed days) as JSON, written when the game
-- is created, so every process (the simulator, each door, another BBS's door) reads the same
-- hours whatever its own configuration says. Empty for games created before this step: they
-- use the reading process's `[market]` calendar.
ALTER TABLE mk_sims ADD COLUMN calendar TEXT NOT NULL DEFAULT '';
