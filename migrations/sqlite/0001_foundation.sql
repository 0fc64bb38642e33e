-- Users of the BBS and the log of every call (connection). Times are milliseconds since the
-- Unix epoch; flags are 0/1 integers.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    handle        TEXT    NOT NULL,
    handle_key    TEXT    NOT NULL UNIQUE,   -- lower-cased handle: handles are unique ignoring case
    password_hash TEXT    NOT NULL,          -- argon2id PHC string
    charset       TEXT    NOT NULL CHECK (charset IN ('ansi', 'atascii', 'ascii')),
    width         BIGINT  NOT NULL,
    height        BIGINT  NOT NULL,
    is_sysop      BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL,
    last_login_at BIGINT,
    times_on      BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE calls (
    id           INTEGER PRIMARY KEY,
    started_at   BIGINT  NOT NULL,
    ended_at     BIGINT,
    duration_ms  BIGINT,
    transport    TEXT    NOT NULL,           -- telnet, raw, serial, modem, virtual-modem, rlogin
    peer         TEXT    NOT NULL,           -- IP:port, device path, or caller ID
    node         BIGINT,                     -- NULL while in the lobby or if no node was free
    charset      TEXT,
    user_id      BIGINT  REFERENCES users(id),
    end_reason   TEXT
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_user_id ON calls (user_id);
