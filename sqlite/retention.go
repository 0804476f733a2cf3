package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"sync"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

var _ eventstore.Retainer = (*Backend)(nil)

const (
	sqlSetRetention = `INSERT INTO retention_policies (kind, name, max_age, max_count, truncate_before)
	VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (kind, name) DO UPDATE SET max_age = excluded.max_age,
		max_count = excluded.max_count, truncate_before = excluded.truncate_before`
	sqlRetentions = `SELECT kind, name, max_age, max_count, truncate_before
	FROM retention_policies ORDER BY kind = 'category', name`
	// sqlFirstRetained finds the first event of a life, between two
	// versions, recorded at or after a time: it walks the expired events
	// that are still stored, and stops at the first retained one.
	sqlFirstRetained = `SELECT version, position FROM events
	WHERE stream = ? AND life = ? AND version BETWEEN ? AND ? AND recorded_at >= ?
	ORDER BY version LIMIT 1`
	// A batch is a stream's first events, in the order of events_stream,
	// which is position order within a stream: its earlier lives first,
	// then the front of its current one. sqlPruneRange walks at most the
	// batch's limit of index entries (the position is the rowid, in them).
	sqlPruneRange = `SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0) FROM (
	SELECT position FROM events WHERE stream = ? AND position < ? ORDER BY life, version LIMIT ?)`
	// sqlPruneBelow counts the stream's events before (life, version).
	sqlPruneBelow = `SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0) FROM events
	WHERE stream = ?1 AND (life, version) < (?2, ?3)`
	// sqlPruneEvents deletes a batch: the stream's events up to and
	// including (life, version), a range of events_stream.
	sqlPruneEvents = `DELETE FROM events WHERE stream = ?1 AND (life, version) <= (?2, ?3)`
	// sqlPruneHighWater keeps the highest position of the log in
	// log_high_water when the batch removes it (see schema.sql).
	sqlPruneHighWater = `INSERT INTO log_high_water (id, position)
	SELECT 1, position FROM events WHERE position = (SELECT max(position) FROM events) AND stream = ? AND position <= ?
	ON CONFLICT (id) DO UPDATE SET position = max(position, excluded.position)`
	// sqlPrunedLast records the version a stream carries on from before
	// a batch removes its last event (see streams in schema.sql).
	sqlPrunedLast = `UPDATE streams SET version = ?, updated_at = (SELECT recorded_at FROM events WHERE position = ?) WHERE sk = ?`
	sqlMarkPruned = `UPDATE streams SET pruned = 1 WHERE sk = ? AND pruned = 0`
	sqlKeptBack   = `SELECT count(*) FROM events WHERE stream = ? AND position > ? AND position < ?`
)

// SetRetention implements [eventstore.Retainer].
func (b *Backend) SetRetention(ctx context.Context, p eventstore.RetentionPolicy) error {
	kind, name := "stream", p.Stream
	if p.Stream == "" {
		kind, name = "category", p.Category
	}
	return b.write(ctx, func(tx *sqlx.Tx) error {
		r := p.Retention
		if r.IsZero() {
			_, err := b.exec(ctx, tx, `DELETE FROM retention_policies WHERE kind = ? AND name = ?`, kind, name)
			return err
		}
		_, err := b.exec(ctx, tx, sqlSetRetention, kind, name, int64(r.MaxAge), r.MaxCount, r.TruncateBefore)
		return err
	})
}

// Retentions implements [eventstore.Retainer].
func (b *Backend) Retentions(ctx context.Context) ([]eventstore.RetentionPolicy, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	return queryPage(ctx, b, nil, func(rows *sql.Rows) (eventstore.RetentionPolicy, error) {
		var p eventstore.RetentionPolicy
		var kind, name string
		var age int64
		err := rows.Scan(&kind, &name, &age, &p.Retention.MaxCount, &p.Retention.TruncateBefore)
		p.Retention.MaxAge = time.Duration(age)
		if kind == "stream" {
			p.Stream = name
		} else {
			p.Category = name
		}
		return p, err
	}, sqlRetentions)
}

// RetainedFrom implements [eventstore.Retainer].
func (b *Backend) RetainedFrom(ctx context.Context, stream string, r eventstore.Retention, now time.Time) (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	st, err := b.streamRecord(ctx, b.reader, stream)
	switch {
	case err != nil:
		return 0, err
	case st.state == tombstone || st.version < 0:
		return 0, eventstore.ErrStreamNotFound
	}
	floor, _, err := b.retained(ctx, b.reader, st, r, now, st.version)
	return floor, err
}

// retained returns the first version of the current life of a stream
// (st, at its last version) that r retains at now, and the position of
// the first event stored from there on (math.MaxInt64 when there is
// none). It looks only at the versions up to upTo: when none of those is
// retained, floor is past upTo (at most st.version+1), and pos is
// math.MaxInt64.
func (b *Backend) retained(ctx context.Context, q sqlx.QueryerContext, st streamRecord, r eventstore.Retention, now time.Time, upTo int64) (floor, pos int64, err error) {
	last := st.version
	floor = r.TruncateBefore
	if r.MaxCount > 0 {
		floor = max(floor, last+1-r.MaxCount)
	}
	floor = min(floor, last+1)
	cutoff := int64(math.MinInt64)
	if r.MaxAge > 0 {
		cutoff = now.Add(-r.MaxAge).UnixNano()
	}
	var version int64
	start := b.logStart()
	err = q.QueryRowxContext(ctx, sqlFirstRetained, st.sk, st.life, floor, upTo, cutoff).Scan(&version, &pos)
	b.logSQL(ctx, sqlFirstRetained, []any{st.sk, st.life, floor, upTo, cutoff}, start, err)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if r.MaxAge > 0 {
			floor = max(floor, min(upTo, last)+1)
		}
		return floor, math.MaxInt64, nil
	case err != nil:
		return 0, 0, fail(ctx, err)
	}
	if r.MaxAge > 0 {
		floor = version
	}
	return floor, pos, nil
}

// StoredStreams implements [eventstore.Retainer]. The streams of a
// category are a range of IDs: the category itself, and those that begin
// with it and '-'.
func (b *Backend) StoredStreams(ctx context.Context, category, after string, limit int) ([]string, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	scan := func(rows *sql.Rows) (string, error) {
		var id string
		return id, rows.Scan(&id)
	}
	if category == "" {
		return queryPage(ctx, b, nil, scan, `SELECT id FROM streams WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	}
	return queryPage(ctx, b, nil, scan, `SELECT id FROM streams
		WHERE id > ? AND (id = ? OR (id >= ? AND id < ?)) ORDER BY id LIMIT ?`,
		after, category, category+"-", category+".", limit)
}

// PruneStream implements [eventstore.Retainer]. Its write transaction
// reads only the index entries of the batch (and the retention's walk over
// them): a writer waits for the batch alone. KeptBack is counted after
// it, from a reader.
func (b *Backend) PruneStream(ctx context.Context, req eventstore.PruneRequest) (eventstore.PruneBatch, error) {
	var res eventstore.PruneBatch
	var st streamRecord
	below := int64(math.MaxInt64)
	if req.MaxPosition < math.MaxInt64 {
		below = req.MaxPosition + 1
	}
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		res = eventstore.PruneBatch{}
		var err error
		if st, err = b.streamRecord(ctx, tx, req.Stream); err != nil {
			return err
		}
		if st.sk == 0 || st.state == tombstone {
			return nil // nothing stored
		}
		if err := b.queryRow(ctx, tx, sqlPruneRange, []any{st.sk, below, req.Limit}, &res.Events, &res.First, &res.Last); err != nil {
			return err
		}
		if res.Events == 0 {
			return nil
		}
		var lastLife, lastVersion int64
		if err := b.queryRow(ctx, tx, `SELECT life, version FROM events WHERE position = ?`, []any{res.Last}, &lastLife, &lastVersion); err != nil {
			return err
		}
		res.More = res.Events == int64(req.Limit)
		if lastLife == st.life && st.state == 0 {
			// The batch reaches the current life: it stops before the
			// first retained version.
			floor, _, err := b.retained(ctx, tx, st, req.Retention, req.Now, lastVersion)
			if err != nil {
				return err
			}
			if floor <= lastVersion {
				res.More = false
				if err := b.queryRow(ctx, tx, sqlPruneBelow, []any{st.sk, st.life, floor}, &res.Events, &res.First, &res.Last); err != nil {
					return err
				}
				if res.Events == 0 {
					return nil
				}
				if err := b.queryRow(ctx, tx, `SELECT life, version FROM events WHERE position = ?`, []any{res.Last}, &lastLife, &lastVersion); err != nil {
					return err
				}
			}
		}
		if _, err := b.exec(ctx, tx, sqlPruneHighWater, st.sk, res.Last); err != nil {
			return err
		}
		if lastLife == st.life && st.state == 0 && lastVersion == st.version {
			// The stream's last event goes: its record keeps the version.
			if _, err := b.exec(ctx, tx, sqlPrunedLast, st.version, res.Last, st.sk); err != nil {
				return err
			}
		}
		if _, err := b.exec(ctx, tx, sqlMarkPruned, st.sk); err != nil {
			return err
		}
		if _, err := b.exec(ctx, tx, sqlPruneEvents, st.sk, lastLife, lastVersion); err != nil {
			return err
		}
		if lastLife == st.life && st.state == 0 {
			// The snapshots of the current life below the last version removed.
			r, err := b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ? AND life = ? AND version < ?`, req.Stream, st.life, lastVersion)
			if err != nil {
				return err
			}
			if res.Snapshots, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil && res.Events > 0 {
		b.pruneCheckpoint(ctx)
	}
	if err != nil || res.More || below == math.MaxInt64 || st.sk == 0 {
		return res, err
	}
	// Expired events above MaxPosition: those below the first retained
	// one, counted outside the write transaction.
	if st, err = b.streamRecord(ctx, b.reader, req.Stream); err != nil || st.state == tombstone {
		return res, err
	}
	end := int64(math.MaxInt64)
	if st.state == 0 {
		if _, end, err = b.retained(ctx, b.reader, st, req.Retention, req.Now, st.version); err != nil {
			return res, err
		}
	}
	if end > below {
		err = b.queryRow(ctx, b.reader, sqlKeptBack, []any{st.sk, req.MaxPosition, end}, &res.KeptBack)
	}
	return res, err
}

// queryRow runs a one-row query and scans it into dest.
func (b *Backend) queryRow(ctx context.Context, q sqlx.QueryerContext, query string, args []any, dest ...any) error {
	start := b.logStart()
	err := q.QueryRowxContext(ctx, query, args...).Scan(dest...)
	b.logSQL(ctx, query, args, start, err)
	return fail(ctx, err)
}

// Pruned implements [eventstore.Retainer]: the stream's record says.
func (b *Backend) Pruned(ctx context.Context, stream string) (bool, error) {
	if err := b.checkOpen(); err != nil {
		return false, err
	}
	var n int
	err := b.reader.GetContext(ctx, &n, `SELECT count(*) FROM streams WHERE id = ? AND pruned = 1`, stream)
	return n > 0, fail(ctx, err)
}

// pruneCheckpointEvery is how many prune batches write to the WAL between
// two checkpoints of a prune's own: a batch writes a few dozen frames, and
// without them the commit that fills the WAL, often a writer's, would copy
// it into the file while the writers wait.
const pruneCheckpointEvery = 4

// pruneCheckpoint copies the WAL into the file from the side connection
// every pruneCheckpointEvery batches: a PASSIVE checkpoint, which writers
// need not wait for. It is best effort: when it fails, SQLite's own
// checkpoint at the WAL's limit still runs.
func (b *Backend) pruneCheckpoint(ctx context.Context) {
	if b.pruneBatches.Add(1)%pruneCheckpointEvery == 0 {
		b.side.exec(ctx, b, `PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

// sideConn is a connection of the Backend's own, besides the writer and
// the readers, opened when first used: it runs checkpoints that must not
// hold the writer.
type sideConn struct {
	mu     sync.Mutex
	db     *sqlx.DB
	closed bool
}

func (c *sideConn) exec(ctx context.Context, b *Backend, query string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.open(b); err != nil {
		return err
	}
	_, err := c.db.ExecContext(ctx, query)
	return fail(ctx, err)
}

// open opens the connection when it is not yet; c.mu is held.
func (c *sideConn) open(b *Backend) error {
	if c.closed {
		return eventstore.ErrClosed
	}
	if c.db == nil {
		db, err := b.openReader()
		if err != nil {
			return err
		}
		db.SetMaxOpenConns(1)
		c.db = db
	}
	return nil
}

func (c *sideConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.db == nil {
		return nil
	}
	return c.db.Close()
}
