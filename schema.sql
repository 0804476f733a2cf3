-- The eventstore SQLite schema: the one source of truth. The root package
-- embeds it as eventstore.SchemaSQL and package sqlite applies it. Each
-- "-- migration N" section below is applied once, in order, inside a
-- transaction, and the eventstore_schema table records the last one applied.
-- Never edit a section that has shipped: add the next one.
--
-- The layout a store file has today is the one the sections leave behind,
-- described in the last migration that rebuilt each table (migration 7 for
-- streams, 9 for events and its event_ids). Reading a store with the sqlite3
-- shell:
--
--   SELECT e.position, s.id AS stream, e.version, e.type, e.data,
--          datetime(e.recorded_at / 1e9, 'unixepoch') AS recorded
--   FROM events e JOIN streams s ON s.sk = e.stream ORDER BY e.position;
--
-- Open the file read-only (sqlite3 -readonly) while the application runs:
-- a write behind the store's back (or a checksum left stale) is reported by
-- Verify.

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
-- Storage v2: the layout that writes the fewest pages per event. An append
-- of one event to an existing stream writes the events row, one entry each
-- in the ID index, the per-stream index and the category index, and
-- nothing else: no streams row, no sqlite_sequence.
--
-- Streams get an integer key, sk, that events carry instead of the stream
-- ID text, so the per-stream and category indexes hold small integers.
-- Categories get one too. The events of migrated files keep every position,
-- ID, life, version and time, and get their checksums (eventstore_checksum
-- is a function the sqlite package registers with the driver: this section
-- cannot be applied from the sqlite3 shell).

-- stream_categories names each category once; events and streams carry its ck.
CREATE TABLE stream_categories (
    ck   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);
INSERT INTO stream_categories (name)
    SELECT category FROM streams UNION SELECT category FROM events ORDER BY 1;

-- streams holds one row per stream ID that ever had events. A row is never
-- deleted, so that its sk never names another stream: readers keep the
-- stream ID of each key in memory. DeleteStream sets state to -1 and
-- starts the next life (life + 1); PurgeStream sets state to -2 (the
-- tombstone) and starts the next life. The events of earlier lives stay in
-- events (the global log never forgets, until a purge).
--
-- A stream's last version is not written on append: it is the highest
-- version among the events of its current life (one seek in
-- events_stream), or the version column when that is higher or the life
-- has no events left. version is written only where the events can no
-- longer tell: -1 when a life starts; by a purge; and by a prune.
--
-- A prune (retention) that removes events from the oldest end of a
-- stream's current life must, in the same transaction, set version to the
-- stream's last version (and updated_at to the recorded_at of its last
-- event) before it deletes them, at least whenever it may remove the
-- stream's last event: the stream then carries on from that version
-- (StreamVersion, Append) with no events left. created_at stays the time
-- of the life's first append.
CREATE TABLE streams_v7 (
    sk         INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    category   INTEGER NOT NULL,           -- stream_categories.ck
    life       INTEGER NOT NULL,
    state      INTEGER NOT NULL,           -- 0 live, -1 deleted, -2 purged (tombstone)
    version    INTEGER NOT NULL,           -- see above; -1 for none
    created_at INTEGER NOT NULL,           -- Unix nanoseconds, UTC: the life's first append
    updated_at INTEGER NOT NULL            -- with version: the time of the event at version
);
INSERT INTO streams_v7 (id, category, life, state, version, created_at, updated_at)
    SELECT s.id, c.ck, s.life, CASE WHEN s.version >= 0 THEN 0 ELSE s.version END,
        max(s.version, -1), s.created_at, s.updated_at
    FROM streams s JOIN stream_categories c ON c.name = s.category
    ORDER BY s.id;
-- Events without a stream record (a file edited by hand): the record they
-- lack, as a deleted stream, so that no event is lost.
INSERT INTO streams_v7 (id, category, life, state, version, created_at, updated_at)
    SELECT e.stream_id, c.ck, max(e.life) + 1, -1, -1, 0, 0
    FROM events e JOIN stream_categories c ON c.name = e.category
    WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.id = e.stream_id)
    GROUP BY e.stream_id;

-- events is the global log; position is the rowid. A new event's position
-- is one past the highest in the table, or one past log_high_water's when
-- that is higher (see there), so positions are never handed out twice.
-- Positions are assigned inside the single write transaction, so commit
-- order is position order.
--
-- checksum is the CRC-32C (Castagnoli) of the event, over these bytes in
-- order: the stream ID's length as 4 bytes big-endian and its UTF-8 bytes;
-- the version as 8 bytes big-endian (two's complement); the type's length
-- (4 bytes) and bytes; data's length (4 bytes) and bytes; metadata's
-- length (4 bytes) and bytes. Empty and NULL data (or metadata) are the
-- same: length 0. Verify recomputes it for every event.
CREATE TABLE events_v7 (
    position    INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL UNIQUE,   -- 16-byte UUID
    stream      INTEGER NOT NULL,          -- streams.sk
    life        INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    category    INTEGER NOT NULL,          -- stream_categories.ck
    type        TEXT    NOT NULL,
    data        BLOB,
    metadata    BLOB,
    recorded_at INTEGER NOT NULL,          -- Unix nanoseconds, UTC
    checksum    INTEGER NOT NULL
);
INSERT INTO events_v7 (position, id, stream, life, version, category, type, data, metadata, recorded_at, checksum)
    SELECT e.position, e.id, s.sk, e.life, e.version, c.ck, e.type, e.data, e.metadata, e.recorded_at,
        eventstore_checksum(e.stream_id, e.version, e.type, e.data, e.metadata)
    FROM events e JOIN streams_v7 s ON s.id = e.stream_id JOIN stream_categories c ON c.name = e.category
    ORDER BY e.position;

-- log_high_water holds the highest position ever given, when the events
-- table no longer does: a purge (or a prune) that removes the event at the
-- highest position records that position here, in the same transaction.
-- Otherwise it is empty, and nothing writes it.
CREATE TABLE log_high_water (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    position INTEGER NOT NULL
);
INSERT INTO log_high_water (id, position)
    SELECT 1, seq FROM sqlite_sequence
    WHERE name = 'events' AND seq > coalesce((SELECT max(position) FROM events), 0);

DROP TABLE events;
DROP TABLE streams;
ALTER TABLE events_v7 RENAME TO events;
ALTER TABLE streams_v7 RENAME TO streams;

-- ReadStream, StreamVersion and ReadAll filtered by stream: one index.
-- Within one stream its order, (life, version), is also position order.
CREATE UNIQUE INDEX events_stream ON events (stream, life, version);
-- ReadAll filtered by category, in position order: an index entry ends
-- with the rowid, which is the position, so (category) alone is ordered by
-- position within a category, at half the size of (category, position).
CREATE INDEX events_category ON events (category);
-- ListStreams by category.
CREATE INDEX streams_category ON streams (category, id) WHERE state = 0;
-- The index of events by type, events_type ON events (type), is
-- optional: Options.TypeIndex of package sqlite creates it.

-- migration 8
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
-- pruned is 1 once a prune has removed events of the stream, so that its
-- versions may begin past 0 (Verify asks). A prune sets version and
-- updated_at as migration 7 describes; positions it removes from the top
-- of the log go to log_high_water, as a purge's do.
ALTER TABLE streams ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0;

-- migration 9
-- Event IDs in a table of their own, keyed by an integer, instead of the
-- UNIQUE index on events.id. Default event IDs are UUIDv7, which grow with
-- time, so their keys arrive at the table's right edge, where SQLite gives
-- a table that outgrows its last page a fresh page and rewrites nothing
-- else; an index leaf that overflows is instead rebalanced with its two
-- neighbours and their parent, four pages rewritten. This saves about
-- three of the twenty pages a 100-event append writes.
--
-- events is rebuilt as migration 7 made it, without UNIQUE on id (a
-- constraint's index cannot be dropped); its indexes are made again, and
-- Open makes events_type again when the file had it.
CREATE TABLE events_v9 (
    position    INTEGER PRIMARY KEY,
    id          BLOB    NOT NULL,          -- 16-byte UUID, unique: see event_ids
    stream      INTEGER NOT NULL,          -- streams.sk
    life        INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    category    INTEGER NOT NULL,          -- stream_categories.ck
    type        TEXT    NOT NULL,
    data        BLOB,
    metadata    BLOB,
    recorded_at INTEGER NOT NULL,          -- Unix nanoseconds, UTC
    checksum    INTEGER NOT NULL           -- CRC-32C: see migration 7
);
-- The same columns in the same order, and no ORDER BY: SQLite may copy
-- the rows as they are stored (its transfer optimization), in rowid order,
-- which is position order.
INSERT INTO events_v9 SELECT * FROM events;
DROP TABLE events;
ALTER TABLE events_v9 RENAME TO events;
CREATE UNIQUE INDEX events_stream ON events (stream, life, version);
CREATE INDEX events_category ON events (category);

-- event_ids has one row per key k that some event's ID has: the position
-- of the first such event still in the log. k is eventstore_id_key(id), a
-- function the sqlite package registers with the driver (this section, and
-- the trigger below, cannot run in the sqlite3 shell): for a UUID of
-- version 7 its first 8 bytes, big-endian, as a signed integer; for any
-- other ID those 8 bytes XOR its last 8, so that IDs that differ only at
-- the end (00000000-0000-0000-0000-000000000001, ...2) get keys of their
-- own.
--
-- Two IDs with one key (rare: two processes' UUIDv7 of the same
-- millisecond and sequence) are both kept: every event after the first in
-- event_ids_shared, by full ID. An ID is stored when the event with
-- event_ids' position has it, or when event_ids_shared has it. Appends
-- insert the rows (package sqlite, eventids.go); deleting an event deletes
-- them (the trigger), and when the event was the one in event_ids another
-- of its key, if any, takes its place there.
CREATE TABLE event_ids (
    k        INTEGER PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE event_ids_shared (
    id       BLOB    PRIMARY KEY,
    k        INTEGER NOT NULL,
    position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX event_ids_shared_k ON event_ids_shared (k, position);
-- (In key order, the first of a key by position; the second statement
-- reads the log again only when some IDs share a key.)
INSERT INTO event_ids (k, position)
    SELECT eventstore_id_key(id) AS k, position FROM events WHERE true ORDER BY k, position
    ON CONFLICT (k) DO NOTHING;
INSERT INTO event_ids_shared (id, k, position)
    SELECT e.id, i.k, e.position FROM events e JOIN event_ids i ON i.k = eventstore_id_key(e.id)
    WHERE (SELECT count(*) FROM event_ids) < (SELECT count(*) FROM events) AND i.position <> e.position;

CREATE TRIGGER events_forget_id AFTER DELETE ON events BEGIN
    DELETE FROM event_ids WHERE k = eventstore_id_key(OLD.id) AND position = OLD.position;
END;
-- Only when some IDs share a key; self-contained, whichever trigger fires
-- first.
CREATE TRIGGER events_forget_shared_id AFTER DELETE ON events
WHEN EXISTS (SELECT 1 FROM event_ids_shared) BEGIN
    DELETE FROM event_ids_shared WHERE id = OLD.id;
    DELETE FROM event_ids WHERE k = eventstore_id_key(OLD.id) AND position = OLD.position;
    INSERT INTO event_ids (k, position)
        SELECT k, position FROM event_ids_shared WHERE k = eventstore_id_key(OLD.id)
        ORDER BY position LIMIT 1
        ON CONFLICT (k) DO NOTHING;
    DELETE FROM event_ids_shared WHERE k = eventstore_id_key(OLD.id)
        AND position = (SELECT position FROM event_ids WHERE k = eventstore_id_key(OLD.id));
END;
