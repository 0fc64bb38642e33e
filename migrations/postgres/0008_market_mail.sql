-- System mail from the market (fills, margin calls, liquidations, anonymous tips), sent by
-- the process that holds a game's simulation lease.
--
-- mk_mail_cursor: how far a game's exchange events have been turned into mail. Every event
-- with seq <= done_seq is mailed. A batch is planned before any of its mail is written by
-- setting batch_end (> done_seq), and done_seq moves up to batch_end only after all of the
-- batch's mail is stored; a process that dies in between finds the same batch again, so the
-- letters (keyed by what the batch holds) come out the same and are stored once.
-- mk_tips_sent: scheduled news items whose tips have been mailed (once per item).
-- Times are ms since the epoch.
CREATE TABLE mk_mail_cursor (
    game_id     BIGINT  PRIMARY KEY,
    done_seq    BIGINT  NOT NULL,
    batch_end   BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE mk_tips_sent (
    game_id     BIGINT  NOT NULL,
    news_id     BIGINT  NOT NULL,
    recipients  BIGINT  NOT NULL,
    sent_at     BIGINT  NOT NULL,
    PRIMARY KEY (game_id, news_id)
);
