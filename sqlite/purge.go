package sqlite

import (
	"context"
	"errors"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// PurgeStream implements [eventstore.Purger]. The positions of the removed
// events are never handed out again (the events table is AUTOINCREMENT).
func (b *Backend) PurgeStream(ctx context.Context, stream string) (int64, error) {
	var n int64
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		life, _, err := b.streamState(ctx, tx, stream)
		purged := errors.Is(err, eventstore.ErrStreamPurged)
		if err != nil && !purged {
			return err
		}
		r, err := b.exec(ctx, tx, `DELETE FROM events WHERE stream_id = ?`, stream)
		if err != nil {
			return err
		}
		if n, err = r.RowsAffected(); err != nil {
			return err
		}
		if n == 0 && !purged {
			return eventstore.ErrStreamNotFound
		}
		for _, q := range []string{
			`DELETE FROM snapshots WHERE stream_id = ?`,
			`DELETE FROM idempotency_keys WHERE stream_id = ?`,
			`DELETE FROM parked WHERE stream_id = ?`,
		} {
			if _, err := b.exec(ctx, tx, q, stream); err != nil {
				return err
			}
		}
		_, err = b.exec(ctx, tx, `INSERT INTO streams (id, category, life, version, created_at, updated_at)
			VALUES (?, ?, ?, ?, 0, 0)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version, life = excluded.life`,
			stream, eventstore.Category(stream), life+1, tombstone)
		return err
	})
	return n, err
}

// RemoveTombstone implements [eventstore.Purger].
func (b *Backend) RemoveTombstone(ctx context.Context, stream string) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		r, err := b.exec(ctx, tx, `UPDATE streams SET version = -1 WHERE id = ? AND version = ?`, stream, tombstone)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = eventstore.ErrStreamNotFound
			}
			return err
		}
		return nil
	})
}
