package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jmoiron/sqlx"
)

// Read runs fn in a read-only transaction on one of the reader
// connections, for the application's own tables in the store's file, such
// as a projection's: fn sees one consistent snapshot of the whole file
// (every table as of one commit, the store's and the application's) and
// never waits for the writer, even while a [eventstore.Store.Transact] or
// an append holds it. A write in fn fails (the readers are query_only).
// The transaction ends when fn returns; Read returns fn's error, or ctx's
// when it ended.
//
// The snapshot is taken at fn's first statement, not when Read is called:
// WAL readers start their snapshot with their first read.
func (b *Backend) Read(ctx context.Context, fn func(tx *sqlx.Tx) error) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	tx, err := b.reader.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read: %w", fail(ctx, err))
	}
	defer tx.Rollback() // read-only: nothing to commit
	if err := fn(tx); err != nil {
		return err
	}
	return ctx.Err()
}
