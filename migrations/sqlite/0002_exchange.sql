-- The exchange: games, instruments, accounts, positions, orders, trades, the ledger and the
-- event log. The busy tables (positions, orders, trades, ledger, events) carry no foreign keys:
-- every order writes a dozen of their rows, a key check per row is a query of its own (and on
-- PostgreSQL a share lock on the game's one row that every process would fight over). They
-- are written only by the exchange's engine, and `nuggetnet audit` checks that they agree.
-- Money is integer cents, quantities integer shares, prices integer cents that are always a
-- whole number of the instrument's tick. Rates are basis points (1/100 of a percent).
CREATE TABLE ex_games (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL,
    status               TEXT    NOT NULL CHECK (status IN ('open', 'over')),
    starting_cash        BIGINT  NOT NULL,
    initial_margin_bp    BIGINT  NOT NULL,
    maint_long_bp        BIGINT  NOT NULL,
    maint_short_bp       BIGINT  NOT NULL,
    borrow_fee_bp_day    BIGINT  NOT NULL,
    fee_bp               BIGINT  NOT NULL,
    collar_bp            BIGINT  NOT NULL,
    stp_default          TEXT    NOT NULL,
    created_at           BIGINT  NOT NULL
);

CREATE TABLE ex_instruments (
    id             INTEGER PRIMARY KEY,
    game_id        BIGINT  NOT NULL REFERENCES ex_games(id),
    symbol         TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    profile        TEXT    NOT NULL,
    tick           BIGINT  NOT NULL CHECK (tick > 0),
    shares_issued  BIGINT  NOT NULL CHECK (shares_issued >= 0),
    last_price     BIGINT  NOT NULL CHECK (last_price > 0),
    next_priority  BIGINT  NOT NULL DEFAULT 1,
    UNIQUE (game_id, symbol)
);

-- One row per player per game, plus one house account per game (player_id NULL, is_house 1).
CREATE TABLE ex_accounts (
    id              INTEGER PRIMARY KEY,
    game_id         BIGINT  NOT NULL REFERENCES ex_games(id),
    player_id       BIGINT,
    is_house        BIGINT  NOT NULL DEFAULT 0,
    cash            BIGINT  NOT NULL DEFAULT 0,
    margin_call_at  BIGINT,
    created_at      BIGINT  NOT NULL,
    UNIQUE (game_id, player_id)
);

CREATE TABLE ex_positions (
    account_id     BIGINT  NOT NULL,
    instrument_id  BIGINT  NOT NULL,
    qty            BIGINT  NOT NULL,
    PRIMARY KEY (account_id, instrument_id)
);

CREATE TABLE ex_orders (
    id             INTEGER PRIMARY KEY,
    game_id        BIGINT  NOT NULL,
    instrument_id  BIGINT  NOT NULL,
    account_id     BIGINT  NOT NULL,
    side           TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    intent         TEXT    NOT NULL CHECK (intent IN ('buy', 'sell', 'short', 'cover')),
    kind           TEXT    NOT NULL CHECK (kind IN ('limit', 'market')),
    tif            TEXT    NOT NULL CHECK (tif IN ('gtc', 'day', 'ioc', 'fok')),
    price          BIGINT,
    qty            BIGINT  NOT NULL CHECK (qty > 0),
    filled         BIGINT  NOT NULL DEFAULT 0 CHECK (filled >= 0),
    status         TEXT    NOT NULL CHECK (status IN ('open', 'filled', 'cancelled')),
    reason         TEXT,
    priority       BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL
);
CREATE INDEX ex_orders_book ON ex_orders (instrument_id, side, price, priority) WHERE status = 'open';
CREATE INDEX ex_orders_account ON ex_orders (account_id, status);

CREATE TABLE ex_trades (
    id                 INTEGER PRIMARY KEY,
    game_id            BIGINT  NOT NULL,
    instrument_id      BIGINT  NOT NULL,
    price              BIGINT  NOT NULL CHECK (price > 0),
    qty                BIGINT  NOT NULL CHECK (qty > 0),
    buy_order_id       BIGINT  NOT NULL,
    sell_order_id      BIGINT  NOT NULL,
    taker_side         TEXT    NOT NULL CHECK (taker_side IN ('buy', 'sell')),
    created_at         BIGINT  NOT NULL
);
CREATE INDEX ex_trades_instrument ON ex_trades (instrument_id, id);
CREATE INDEX ex_trades_buy ON ex_trades (buy_order_id);
CREATE INDEX ex_trades_sell ON ex_trades (sell_order_id);

-- Every movement of cash or shares, with its reason. Sums per account equal the balances.
CREATE TABLE ex_ledger (
    id             INTEGER PRIMARY KEY,
    game_id        BIGINT  NOT NULL,
    account_id     BIGINT  NOT NULL,
    instrument_id  BIGINT,
    cash_delta     BIGINT  NOT NULL,
    share_delta    BIGINT  NOT NULL,
    reason         TEXT    NOT NULL CHECK (reason IN ('trade', 'fee', 'grant', 'borrow_fee', 'dividend', 'liquidation')),
    trade_id       BIGINT,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX ex_ledger_account ON ex_ledger (account_id);

-- What other processes follow to update screens, by sequence number.
CREATE TABLE ex_events (
    seq            INTEGER PRIMARY KEY,
    game_id        BIGINT  NOT NULL,
    kind           TEXT    NOT NULL,
    account_id     BIGINT,
    instrument_id  BIGINT,
    order_id       BIGINT,
    trade_id       BIGINT,
    price          BIGINT,
    qty            BIGINT,
    detail         TEXT    NOT NULL DEFAULT '',
    created_at     BIGINT  NOT NULL
);
