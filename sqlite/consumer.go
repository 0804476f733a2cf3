package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const (
	// A save never lowers a checkpoint; only a reset does.
	sqlSaveCheckpoint = `INSERT INTO checkpoints (consumer, position, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (consumer) DO UPDATE SET position = max(position, excluded.position), updated_at = excluded.updated_at`
	sqlResetCheckpoint = `INSERT INTO checkpoints (consumer, position, updated_at) VALUES (?, ?, ?)
	ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`
	sqlPruneProcessed = `DELETE FROM processed WHERE consumer = ? AND position <= ?`

	sqlClaimHolder = `SELECT owner, process, expires_at FROM claims WHERE consumer = ?`
	sqlClaim       = `INSERT INTO claims (consumer, owner, process, expires_at) VALUES (?, ?, ?, ?)
	ON CONFLICT (consumer) DO UPDATE SET owner = excluded.owner, process = excluded.process, expires_at = excluded.expires_at`
	sqlReleaseClaim = `DELETE FROM claims WHERE consumer = ? AND owner = ?`
)

// LoadCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) LoadCheckpoint(ctx context.Context, key string) (int64, bool, error) {
	if err := b.checkOpen(); err != nil {
		return 0, false, err
	}
	var pos int64
	err := b.reader.GetContext(ctx, &pos, `SELECT position FROM checkpoints WHERE consumer = ?`, key)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return pos, err == nil, fail(ctx, err)
}

// SaveCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) SaveCheckpoint(ctx context.Context, key string, position int64, at time.Time) error {
	return b.write(ctx, func(tx *sqlx.Tx) error { return b.saveCheckpoint(ctx, tx, key, position, at) })
}

func (b *Backend) saveCheckpoint(ctx context.Context, tx *sqlx.Tx, key string, position int64, at time.Time) error {
	if _, err := b.exec(ctx, tx, sqlSaveCheckpoint, key, position, at.UnixNano()); err != nil {
		return err
	}
	_, err := b.exec(ctx, tx, sqlPruneProcessed, key, position)
	return err
}

// ResetCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) ResetCheckpoint(ctx context.Context, key string, position int64, at time.Time) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		if _, err := b.exec(ctx, tx, sqlResetCheckpoint, key, position, at.UnixNano()); err != nil {
			return err
		}
		_, err := b.exec(ctx, tx, `DELETE FROM processed WHERE consumer = ?`, key)
		return err
	})
}

// Checkpoints implements [eventstore.Checkpointer].
func (b *Backend) Checkpoints(ctx context.Context) ([]eventstore.Checkpoint, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	return queryPage(ctx, b, nil, func(rows *sql.Rows) (eventstore.Checkpoint, error) {
		var c eventstore.Checkpoint
		var at int64
		err := rows.Scan(&c.Key, &c.Position, &at)
		c.UpdatedAt = time.Unix(0, at).UTC()
		return c, err
	}, `SELECT consumer, position, updated_at FROM checkpoints ORDER BY consumer`)
}

// MarkProcessed implements [eventstore.Checkpointer].
func (b *Backend) MarkProcessed(ctx context.Context, key string, id uuid.UUID, position int64) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, err := b.exec(ctx, tx, `INSERT OR REPLACE INTO processed (consumer, event_id, position) VALUES (?, ?, ?)`, key, id[:], position)
		return err
	})
}

// Processed implements [eventstore.Checkpointer].
func (b *Backend) Processed(ctx context.Context, key string, id uuid.UUID) (bool, error) {
	if err := b.checkOpen(); err != nil {
		return false, err
	}
	var n int
	err := b.reader.GetContext(ctx, &n, `SELECT count(*) FROM processed WHERE consumer = ? AND event_id = ?`, key, id[:])
	return n > 0, fail(ctx, err)
}

// Park implements [eventstore.Parker].
func (b *Backend) Park(ctx context.Context, key string, p eventstore.ParkedEvent) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, err := b.exec(ctx, tx, `INSERT OR REPLACE INTO parked
			(consumer, position, event_id, stream_id, error, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			key, p.Position, p.EventID[:], p.StreamID, p.Error, p.Attempts, p.ParkedAt.UnixNano())
		return err
	})
}

// Parked implements [eventstore.Parker].
func (b *Backend) Parked(ctx context.Context, key string) ([]eventstore.ParkedEvent, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	return queryPage(ctx, b, nil, func(rows *sql.Rows) (eventstore.ParkedEvent, error) {
		var p eventstore.ParkedEvent
		var id []byte
		var at int64
		if err := rows.Scan(&p.Position, &id, &p.StreamID, &p.Error, &p.Attempts, &at); err != nil {
			return p, err
		}
		p.ParkedAt = time.Unix(0, at).UTC()
		var err error
		p.EventID, err = uuid.FromBytes(id)
		return p, err
	}, `SELECT position, event_id, stream_id, error, attempts, parked_at FROM parked WHERE consumer = ? ORDER BY position`, key)
}

// Unpark implements [eventstore.Parker].
func (b *Backend) Unpark(ctx context.Context, key string, position int64) (bool, error) {
	var n int64
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		res, err := b.exec(ctx, tx, `DELETE FROM parked WHERE consumer = ? AND position = ?`, key, position)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	return n > 0, err
}

// Claim implements [eventstore.Claimer]. The claim is a row of the
// file, so every process on it sees it. Each claim also records its
// process (see the package documentation on claims): a claim whose process
// is gone is taken over at once, without waiting for its expiry.
func (b *Backend) Claim(ctx context.Context, key, owner string, now, expires time.Time) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	process := b.live.id(b.path)
	return b.write(ctx, func(tx *sqlx.Tx) error {
		var holder, holderProcess string
		var until int64
		err := tx.QueryRowContext(ctx, sqlClaimHolder, key).Scan(&holder, &holderProcess, &until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fail(ctx, err)
		case holder != owner && now.UnixNano() < until && b.live.alive(b.path, holderProcess):
			return fmt.Errorf("%w: %s is claimed by another instance until %s", eventstore.ErrConsumerRunning,
				key, time.Unix(0, until).UTC().Format(time.RFC3339Nano))
		}
		_, err = b.exec(ctx, tx, sqlClaim, key, owner, process, expires.UnixNano())
		return err
	})
}

// Release implements [eventstore.Claimer].
func (b *Backend) Release(ctx context.Context, key, owner string) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, err := b.exec(ctx, tx, sqlReleaseClaim, key, owner)
		return err
	})
}
