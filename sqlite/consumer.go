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

var (
	_ eventstore.Checkpointer   = (*Backend)(nil)
	_ eventstore.TxCheckpointer = (*Backend)(nil)
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

// Park implements [eventstore.Checkpointer].
func (b *Backend) Park(ctx context.Context, key string, p eventstore.ParkedEvent) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, err := b.exec(ctx, tx, `INSERT OR REPLACE INTO parked
			(consumer, position, event_id, stream_id, error, attempts, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			key, p.Position, p.EventID[:], p.StreamID, p.Error, p.Attempts, p.ParkedAt.UnixNano())
		return err
	})
}

// Parked implements [eventstore.Checkpointer].
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

// Unpark implements [eventstore.Checkpointer].
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

// txKey is the context key of the transaction of an exactly-once handler.
type txKey struct{}

// Tx returns the transaction of a [eventstore.Store.Transact] function or
// of an exactly-once consumer's TxHandler, or nil outside one. Write the
// application's own tables through it: those writes commit together with
// the events appended (and the checkpoint saved) in it, or not at all.
//
// Inside such a function, make every call on the store with the context
// the function was given, the one Tx reads the transaction from. The
// transaction holds the store's only writer connection, so an Append (or
// any write) made with another context, such as context.Background(),
// cannot join it and waits for the function that waits for it: it fails
// when its context ends, or after [Options.BusyTimeout] with
// [ErrWriterTimeout] when that has no deadline, and every other write of
// the store waits meanwhile.
func Tx(ctx context.Context) *sqlx.Tx {
	tx, _ := ctx.Value(txKey{}).(*sqlx.Tx)
	return tx
}

// WithCheckpoint implements [eventstore.TxCheckpointer].
func (b *Backend) WithCheckpoint(ctx context.Context, key string, position int64, at time.Time, fn func(ctx context.Context) error) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
			return err
		}
		return b.saveCheckpoint(ctx, tx, key, position, at)
	})
}

// write runs fn in a write transaction and commits it, or rolls it back
// when fn fails or panics. Inside a transaction already (Transact, an
// exactly-once handler) it runs fn in a savepoint of that transaction, so
// that a failing append still leaves nothing behind.
func (b *Backend) write(ctx context.Context, fn func(tx *sqlx.Tx) error) (err error) {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if tx := Tx(ctx); tx != nil {
		return b.savepoint(ctx, tx, fn)
	}
	tx, err := b.begin(ctx, time.Time{})
	if err != nil {
		return err
	}
	defer b.release() // after the rollback below
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err // the caller gave up: nothing is committed
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", fail(ctx, err))
	}
	committed = true
	return nil
}

func (b *Backend) savepoint(ctx context.Context, tx *sqlx.Tx, fn func(tx *sqlx.Tx) error) (err error) {
	if _, err := b.exec(ctx, tx, sqlSavepoint); err != nil {
		return err
	}
	released := false
	defer func() {
		if !released {
			// Undo fn's writes, keep the transaction.
			b.exec(context.WithoutCancel(ctx), tx, sqlRollbackTo)
			b.exec(context.WithoutCancel(ctx), tx, sqlRelease)
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if _, err := b.exec(ctx, tx, sqlRelease); err != nil {
		return err
	}
	released = true
	return nil
}

var _ eventstore.Transactor = (*Backend)(nil)

// Transact implements [eventstore.Transactor]; use it through
// [eventstore.Store.Transact]. fn finds the transaction with [Tx] for the
// application's own SQL.
func (b *Backend) Transact(ctx context.Context, fn func(ctx context.Context) error) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
}

// Claim implements [eventstore.Checkpointer]. The claim is a row of the
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

// Release implements [eventstore.Checkpointer].
func (b *Backend) Release(ctx context.Context, key, owner string) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, err := b.exec(ctx, tx, sqlReleaseClaim, key, owner)
		return err
	})
}
