package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// txKey is the context key of the transaction of an exactly-once handler.
type txKey struct{}

// Tx returns the transaction of a [eventstore.Store.Transact] function or
// of an exactly-once consumer's TxHandler, or nil outside one. Write the
// application's own tables through it: those writes commit together with
// the events appended (and the checkpoint saved) in it, or not at all.
//
// Inside such a function, make every call on the store with the context
// the function was given, the one Tx reads the transaction from. A write
// that fails for want of room ([eventstore.ErrStorageFull]) or on an I/O
// error may make SQLite roll the whole transaction back: when a call on the
// store fails so, the transaction ends in a rollback whatever the function
// does next; when the function's own SQL does, return its error. The
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

// WithCheckpoint implements [eventstore.Transactor].
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
	defer func() { b.noteFull(ctx, err) }() // last: with the writer free
	if tx := Tx(ctx); tx != nil {
		return b.savepoint(ctx, tx, fn)
	}
	tx, err := b.begin(ctx, time.Time{})
	if err != nil {
		return err
	}
	defer b.release() // after the rollback below
	b.lost = nil
	committed := false
	defer func() {
		if !committed {
			tx.Rollback()
		}
	}()
	if err := fn(tx); err != nil {
		return err
	}
	if b.lost != nil {
		return fmt.Errorf("the transaction was rolled back: %w", b.lost)
	}
	if err := ctx.Err(); err != nil {
		return err // the caller gave up: nothing is committed
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", fail(ctx, err))
	}
	committed = true
	b.committed(ctx)
	return nil
}

func (b *Backend) savepoint(ctx context.Context, tx *sqlx.Tx, fn func(tx *sqlx.Tx) error) (err error) {
	if _, err := b.exec(ctx, tx, sqlSavepoint); err != nil {
		return err
	}
	released := false
	defer func() {
		if released {
			return
		}
		// Undo fn's writes, keep the transaction.
		if _, rbErr := b.exec(context.WithoutCancel(ctx), tx, sqlRollbackTo); rbErr != nil && err != nil && b.lost == nil {
			// SQLite rolled the whole transaction back, as it may when a
			// statement fails for want of room or memory, or on an I/O
			// error: begin another, so that what the caller's function
			// writes next stays in one, and have write roll it back.
			b.exec(context.WithoutCancel(ctx), tx, "BEGIN")
			b.lost = err
			return
		}
		b.exec(context.WithoutCancel(ctx), tx, sqlRelease)
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
