-- Time spent in doors during a call, in milliseconds (0 when no door was opened).
ALTER TABLE calls ADD COLUMN door_ms BIGINT NOT NULL DEFAULT 0;
