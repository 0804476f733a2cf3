package sqlite

import (
	"context"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// sqlKeepHighWater records the highest position of the log in
// log_high_water, before a purge may remove the event that holds it, so
// that the position is never handed out again (see schema.sql).
const sqlKeepHighWater = `INSERT INTO log_high_water (id, position)
	SELECT 1, position FROM events WHERE position = (SELECT max(position) FROM events) AND stream = ?
	ON CONFLICT (id) DO UPDATE SET position = max(position, excluded.position)`

// PurgeStream implements [eventstore.Purger]. The positions of the removed
// events are never handed out again: when the purge removes the highest
// one, log_high_water keeps it.
func (b *Backend) PurgeStream(ctx context.Context, stream string) (int64, error) {
	var n int64
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		st, err := b.streamRecord(ctx, tx, stream)
		if err != nil {
			return err
		}
		if st.sk == 0 {
			return eventstore.ErrStreamNotFound
		}
		if _, err := b.exec(ctx, tx, sqlKeepHighWater, st.sk); err != nil {
			return err
		}
		r, err := b.exec(ctx, tx, `DELETE FROM events WHERE stream = ?`, st.sk)
		if err != nil {
			return err
		}
		if n, err = r.RowsAffected(); err != nil {
			return err
		}
		if n == 0 && st.state != tombstone {
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
		_, err = b.exec(ctx, tx, `UPDATE streams SET state = ?, version = -1, life = life + 1 WHERE sk = ?`, tombstone, st.sk)
		return err
	})
	return n, err
}

// RemoveTombstone implements [eventstore.Purger].
func (b *Backend) RemoveTombstone(ctx context.Context, stream string) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		r, err := b.exec(ctx, tx, `UPDATE streams SET state = -1 WHERE id = ? AND state = ?`, stream, tombstone)
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
