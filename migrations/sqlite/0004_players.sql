-- Players of the NuggetNet door. A player is a door user namespaced by the system the call came
-- from: the BBS named in the dropfile (or given with `--system`), or a linked system's tag over
-- rlogin. Handles are unique within a system ignoring case; the exchange only ever sees `id`.
CREATE TABLE players (
    id          INTEGER PRIMARY KEY,
    system      TEXT    NOT NULL,
    handle      TEXT    NOT NULL,
    handle_key  TEXT    NOT NULL,   -- lower-cased, trimmed handle
    created_at  BIGINT  NOT NULL,
    last_seen_at BIGINT NOT NULL,
    UNIQUE (system, handle_key)
);
