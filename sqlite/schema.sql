-- The eventstore SQLite schema: the one source of truth, embedded in the
-- sqlite package. Each "-- migration N" section below is applied once, in
-- order, inside a transaction, and the eventstore_schema table records the
-- last one applied. Never edit a section that has shipped: add the next one.

-- eventstore_schema is the migration runner's record of the schema version,
-- created with the first migration a file gets: one row. It is not PRAGMA
-- user_version, which belongs to the application when the store lives in
-- the application's own file. (Releases before this table kept the version
-- in user_version, up to 4; Open reads it from there once and records it
-- here, leaving user_version as it was.)
CREATE TABLE IF NOT EXISTS eventstore_schema (
    id      INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);

-- migration 1
-- streams holds one row per stream ID that ever had events. DeleteStream
-- sets version to -1 and starts the next life; the events of earlier lives
-- stay in events (the global log never forgets).
CREATE TABLE streams (
    id         TEXT    NOT NULL PRIMARY KEY,
    category   TEXT    NOT NULL,
    life       INTEGER NOT NULL DEFAULT 0, -- bumped by each DeleteStream
    version    INTEGER NOT NULL,           -- last version; -1 while deleted
    created_at INTEGER NOT NULL,           -- Unix nanoseconds, UTC
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
-- ListStreams by category.
CREATE INDEX streams_category ON streams (category, id) WHERE version >= 0;

-- events is the global log. AUTOINCREMENT, unlike a plain rowid, never
-- hands out a position again, even once the highest one has been purged: a
-- consumer that has seen position p must never be given a new event at p.
-- Positions are assigned inside the single write transaction, so commit
-- order is position order.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,
    id          BLOB    NOT NULL UNIQUE,   -- 16-byte UUID
    stream_id   TEXT    NOT NULL,
    life        INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    category    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    data        BLOB,
    metadata    BLOB,
    recorded_at INTEGER NOT NULL           -- Unix nanoseconds, UTC
);
-- ReadStream: a seek to (stream, life, version). Within one stream ID the
-- index order is also position order.
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, life, version);
-- ReadAll filtered by stream, by category, by type: each walks its index in
-- position order.
CREATE INDEX events_stream_position ON events (stream_id, position);
CREATE INDEX events_category_position ON events (category, position);
CREATE INDEX events_type_position ON events (type, position);

-- migration 2
-- Durable consumers: one checkpoint per consumer key (a name, or a name
-- with its group member), the IDs of events handled past the checkpoint
-- (pruned as the checkpoint moves), and the events a consumer gave up on.
CREATE TABLE checkpoints (
    consumer   TEXT    NOT NULL PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL            -- Unix nanoseconds, UTC
) WITHOUT ROWID;

CREATE TABLE processed (
    consumer TEXT    NOT NULL,
    event_id BLOB    NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
CREATE INDEX processed_position ON processed (consumer, position);

CREATE TABLE parked (
    consumer  TEXT    NOT NULL,
    position  INTEGER NOT NULL,
    event_id  BLOB    NOT NULL,
    stream_id TEXT    NOT NULL,
    error     TEXT    NOT NULL,
    attempts  INTEGER NOT NULL,
    parked_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, position)
) WITHOUT ROWID;

-- migration 3
-- Snapshots: a stream's state as of one of its versions. They belong to
-- the stream's current life: DeleteStream deletes them.
CREATE TABLE snapshots (
    stream_id  TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    data       BLOB,
    metadata   BLOB,
    created_at INTEGER NOT NULL,           -- Unix nanoseconds, UTC
    PRIMARY KEY (stream_id, version)
) WITHOUT ROWID;

-- migration 4
-- Producer idempotency keys: an append's key within its stream, with the
-- result it had. They belong to the stream's current life.
CREATE TABLE idempotency_keys (
    stream_id TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    position  INTEGER NOT NULL,
    PRIMARY KEY (stream_id, key)
) WITHOUT ROWID;

-- migration 5
-- A snapshot records the life of its stream it was taken of, and the
-- position of the event at its version, so that one saved as the stream
-- was deleted can never be loaded in its next life. Existing snapshots
-- belong to their stream's current life (DeleteStream has always deleted a
-- stream's snapshots with it).
ALTER TABLE snapshots ADD COLUMN life INTEGER NOT NULL DEFAULT 0;
ALTER TABLE snapshots ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
UPDATE snapshots SET life = coalesce((SELECT life FROM streams WHERE streams.id = snapshots.stream_id), 0);
UPDATE snapshots SET position = coalesce((SELECT position FROM events
	WHERE events.stream_id = snapshots.stream_id AND events.life = snapshots.life AND events.version = snapshots.version), 0);

-- migration 6
-- Claims: which running instance holds a consumer's (or a forwarder's)
-- checkpoint key, so that two instances never run at once, in one process
-- or in several. The holder renews expires_at while it runs and deletes its
-- row when it stops; a claim past its expiry, or whose process is gone, may
-- be taken over.
CREATE TABLE claims (
    consumer   TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,            -- token of the running instance
    process    TEXT    NOT NULL DEFAULT '', -- how to tell its process is alive; '' when unknown
    expires_at INTEGER NOT NULL             -- Unix nanoseconds, UTC
) WITHOUT ROWID;

-- migration 7
-- Retention policies (see eventstore.Retention): a stream's own, or a
-- category's. A policy that keeps everything is not stored.
CREATE TABLE retention_policies (
    kind            TEXT    NOT NULL CHECK (kind IN ('stream', 'category')),
    name            TEXT    NOT NULL,  -- the stream ID or the category
    max_age         INTEGER NOT NULL,  -- nanoseconds; 0: none
    max_count       INTEGER NOT NULL,  -- 0: none
    truncate_before INTEGER NOT NULL,  -- 0: none
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
-- The streams a prune has removed events of: their versions may begin
-- past 0 (Verify asks).
CREATE TABLE pruned_streams (
    stream_id TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;
