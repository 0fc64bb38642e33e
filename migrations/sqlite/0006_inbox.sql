-- Deferred work, the inbox and the game lifecycle.
--
-- jobs: one row per piece of deferred work (mail delivery, reminders, end of game). A worker
-- claims a due job by a conditional UPDATE that sets locked_by/locked_until (a lease); if the
-- worker dies the lease runs out and another worker claims the job again. attempts counts
-- claims; after max_attempts failures dead_at is set and the job is never claimed again.
-- dedupe_key (optional, unique) lets a caller enqueue the same logical job only once.
-- Times are ms since the epoch, flags 0/1.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,   -- JSON
    dedupe_key    TEXT    UNIQUE,
    run_at        BIGINT  NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    max_attempts  BIGINT  NOT NULL,
    last_error    TEXT,
    locked_by     TEXT,
    locked_until  BIGINT,
    done_at       BIGINT,
    dead_at       BIGINT,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE done_at IS NULL AND dead_at IS NULL;

-- Mail. from_player is NULL for system mail; kind says which (player, fill, margin_call,
-- reminder, tip). delivery_key (unique) makes a delivery that is retried after a crash insert
-- the message once.
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    to_player     BIGINT  NOT NULL REFERENCES players (id),
    from_player   BIGINT  REFERENCES players (id),
    kind          TEXT    NOT NULL CHECK (kind IN ('player', 'fill', 'margin_call', 'reminder', 'tip')),
    subject       TEXT    NOT NULL,
    body          TEXT    NOT NULL,
    sent_at       BIGINT  NOT NULL,
    read_at       BIGINT,
    deleted       BIGINT  NOT NULL DEFAULT 0,
    reply_to      BIGINT,
    delivery_key  TEXT    UNIQUE
);
CREATE INDEX messages_inbox ON messages (to_player, deleted, sent_at);

-- A game's season: when it starts and its fixed end; reminders_sent counts the reminder
-- offsets already mailed; ended_at is set once end-of-game processing has finished.
CREATE TABLE seasons (
    game_id         BIGINT  PRIMARY KEY,
    starts_at       BIGINT  NOT NULL,
    ends_at         BIGINT  NOT NULL,
    reminders_sent  BIGINT  NOT NULL DEFAULT 0,
    ended_at        BIGINT
);

-- The final leaderboard of an ended game, kept after new seasons start.
CREATE TABLE season_results (
    game_id     BIGINT  NOT NULL,
    rank        BIGINT  NOT NULL,
    player_id   BIGINT  NOT NULL,
    account_id  BIGINT  NOT NULL,
    cash        BIGINT  NOT NULL,
    holdings    BIGINT  NOT NULL,   -- signed market value at the robust mark, cents
    net_worth   BIGINT  NOT NULL,
    recorded_at BIGINT  NOT NULL,
    PRIMARY KEY (game_id, player_id)
);
