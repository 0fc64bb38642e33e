-- The market simulation: one row per simulated game (its clock, seed, lease and controls),
-- the hidden state of each instrument, the NPC accounts, price snapshots per tick and per
-- market day, the news wire (scheduled and published) and the sysop's audit log.
-- Times are ms since the epoch (market times are on the game's accelerated clock), money and
-- prices integer cents, fair values integer micro-cents, rates basis points, flags 0/1.
CREATE TABLE mk_sims (
    game_id           BIGINT  PRIMARY KEY,
    seed              BIGINT  NOT NULL,
    tick_ms           BIGINT  NOT NULL,
    speed             BIGINT  NOT NULL,
    origin_real       BIGINT  NOT NULL,
    origin_market     BIGINT  NOT NULL,
    paused_at         BIGINT,
    stopped           BIGINT  NOT NULL DEFAULT 0,
    vol_mult_bp       BIGINT  NOT NULL DEFAULT 10000,
    liq_mult_bp       BIGINT  NOT NULL DEFAULT 10000,
    last_tick         BIGINT  NOT NULL DEFAULT 0,
    tick_done         BIGINT  NOT NULL DEFAULT 1,
    last_trade_id     BIGINT  NOT NULL DEFAULT 0,
    holder            TEXT,
    lease_until       BIGINT  NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL
);

CREATE TABLE mk_instruments (
    game_id        BIGINT  NOT NULL,
    instrument_id  BIGINT  NOT NULL,
    fair_ucents    BIGINT  NOT NULL,
    drift_bp_day   BIGINT  NOT NULL,
    vol_bp_day     BIGINT  NOT NULL,
    hype_bp        BIGINT  NOT NULL DEFAULT 0,
    prev_price     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (game_id, instrument_id)
);

CREATE TABLE mk_npcs (
    game_id        BIGINT  NOT NULL,
    player_id      BIGINT  NOT NULL,
    account_id     BIGINT  NOT NULL,
    kind           TEXT    NOT NULL CHECK (kind IN ('maker', 'retail')),
    instrument_id  BIGINT,
    capital        BIGINT  NOT NULL,
    PRIMARY KEY (game_id, player_id)
);

-- Who ran each tick; the primary key makes a double tick impossible.
CREATE TABLE mk_tick_log (
    game_id     BIGINT  NOT NULL,
    tick        BIGINT  NOT NULL,
    holder      TEXT    NOT NULL,
    market_at   BIGINT  NOT NULL,
    started_at  BIGINT  NOT NULL,
    PRIMARY KEY (game_id, tick)
);

CREATE TABLE mk_ticks (
    game_id        BIGINT  NOT NULL,
    instrument_id  BIGINT  NOT NULL,
    tick           BIGINT  NOT NULL,
    market_at      BIGINT  NOT NULL,
    open           BIGINT  NOT NULL,
    high           BIGINT  NOT NULL,
    low            BIGINT  NOT NULL,
    close          BIGINT  NOT NULL,
    volume         BIGINT  NOT NULL,
    fair           BIGINT  NOT NULL,
    PRIMARY KEY (game_id, instrument_id, tick)
);

CREATE TABLE mk_days (
    game_id        BIGINT  NOT NULL,
    instrument_id  BIGINT  NOT NULL,
    day            BIGINT  NOT NULL,
    open           BIGINT  NOT NULL,
    high           BIGINT  NOT NULL,
    low            BIGINT  NOT NULL,
    close          BIGINT  NOT NULL,
    volume         BIGINT  NOT NULL,
    PRIMARY KEY (game_id, instrument_id, day)
);

-- The news wire. Scheduled items (earnings, sysop injections) wait with published_at NULL;
-- followers read published items by id.
CREATE TABLE mk_news (
    id             INTEGER PRIMARY KEY,
    game_id        BIGINT  NOT NULL,
    instrument_id  BIGINT,
    headline       TEXT    NOT NULL,
    jump_bp        BIGINT,
    source         TEXT    NOT NULL,
    due_at         BIGINT  NOT NULL,
    tick           BIGINT,
    published_at   BIGINT
);
CREATE INDEX mk_news_due ON mk_news (game_id, published_at, due_at);

CREATE TABLE mk_audit (
    id          INTEGER PRIMARY KEY,
    game_id     BIGINT,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    detail      TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);
