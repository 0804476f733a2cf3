package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math"
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
	// sqlFirstRetained finds the first event of a life at or above a
	// version recorded at or after a time: it walks the expired events
	// that are still stored, and stops at the first retained one.
	sqlFirstRetained = `SELECT version, position FROM events
	WHERE stream_id = ? AND life = ? AND version >= ? AND recorded_at >= ?
	ORDER BY version LIMIT 1`
	// A stream's expired events are the ones below the position of its
	// first retained event: its earlier lives, then the front of its
	// current one.
	sqlPruneRange = `SELECT count(*), coalesce(min(position), 0), coalesce(max(position), 0) FROM (
	SELECT position FROM events WHERE stream_id = ? AND position < ? ORDER BY position LIMIT ?)`
	sqlPruneEvents = `DELETE FROM events WHERE stream_id = ? AND position BETWEEN ? AND ?`
	sqlKeptBack    = `SELECT count(*) FROM events WHERE stream_id = ? AND position > ? AND position < ?`
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
	life, last, err := b.streamState(ctx, b.reader, stream)
	if errors.Is(err, eventstore.ErrStreamPurged) || err == nil && last < 0 {
		return 0, eventstore.ErrStreamNotFound
	}
	if err != nil {
		return 0, err
	}
	floor, _, err := b.retained(ctx, b.reader, stream, life, last, r, now)
	return floor, err
}

// retained returns the first version of a stream's life (whose last
// version is last) that r retains at now, and the position of the first
// event stored from there on (math.MaxInt64 when there is none).
func (b *Backend) retained(ctx context.Context, q sqlx.QueryerContext, stream string, life, last int64, r eventstore.Retention, now time.Time) (floor, pos int64, err error) {
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
	err = q.QueryRowxContext(ctx, sqlFirstRetained, stream, life, floor, cutoff).Scan(&version, &pos)
	b.logSQL(ctx, sqlFirstRetained, []any{stream, life, floor, cutoff}, start, err)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if r.MaxAge > 0 {
			floor = last + 1
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

// PruneStream implements [eventstore.Retainer].
func (b *Backend) PruneStream(ctx context.Context, req eventstore.PruneRequest) (eventstore.PruneBatch, error) {
	var res eventstore.PruneBatch
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		res = eventstore.PruneBatch{}
		life, last, err := b.streamState(ctx, tx, req.Stream)
		if errors.Is(err, eventstore.ErrStreamPurged) {
			return nil // nothing left
		}
		if err != nil {
			return err
		}
		end := int64(math.MaxInt64) // the first position retained
		if last >= 0 {
			if _, end, err = b.retained(ctx, tx, req.Stream, life, last, req.Retention, req.Now); err != nil {
				return err
			}
		}
		below := end
		if req.MaxPosition < math.MaxInt64 {
			below = min(end, req.MaxPosition+1)
		}
		if err := tx.QueryRowxContext(ctx, sqlPruneRange, req.Stream, below, req.Limit).Scan(&res.Events, &res.First, &res.Last); err != nil {
			return fail(ctx, err)
		}
		res.More = res.Events == int64(req.Limit)
		if !res.More && below < end {
			if err := tx.QueryRowxContext(ctx, sqlKeptBack, req.Stream, req.MaxPosition, end).Scan(&res.KeptBack); err != nil {
				return fail(ctx, err)
			}
		}
		if res.Events == 0 {
			return nil
		}
		// The snapshots of the current life below the last version removed.
		var lastLife, lastVersion int64
		if err := tx.QueryRowxContext(ctx, `SELECT life, version FROM events WHERE position = ?`, res.Last).Scan(&lastLife, &lastVersion); err != nil {
			return fail(ctx, err)
		}
		if _, err := b.exec(ctx, tx, sqlPruneEvents, req.Stream, res.First, res.Last); err != nil {
			return err
		}
		if _, err := b.exec(ctx, tx, `INSERT OR IGNORE INTO pruned_streams (stream_id) VALUES (?)`, req.Stream); err != nil {
			return err
		}
		if lastLife == life && last >= 0 {
			r, err := b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ? AND life = ? AND version < ?`, req.Stream, life, lastVersion)
			if err != nil {
				return err
			}
			if res.Snapshots, err = r.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

// Pruned implements [eventstore.Retainer].
func (b *Backend) Pruned(ctx context.Context, stream string) (bool, error) {
	if err := b.checkOpen(); err != nil {
		return false, err
	}
	var n int
	err := b.reader.GetContext(ctx, &n, `SELECT count(*) FROM pruned_streams WHERE stream_id = ?`, stream)
	return n > 0, fail(ctx, err)
}
