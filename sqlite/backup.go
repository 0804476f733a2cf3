package sqlite

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

var _ eventstore.IntegrityChecker = (*Backend)(nil)

// CheckIntegrity implements [eventstore.IntegrityChecker] with PRAGMA
// integrity_check: "ok", or SQLite's findings, one per line.
func (b *Backend) CheckIntegrity(ctx context.Context) (string, error) {
	if err := b.checkOpen(); err != nil {
		return "", err
	}
	var lines []string
	if err := b.reader.SelectContext(ctx, &lines, "PRAGMA integrity_check"); err != nil {
		return "", fail(ctx, err)
	}
	return strings.Join(lines, "\n"), nil
}

// Backup writes a consistent copy of the store to a new file at dest,
// while writers go on: the copy holds every event committed before the
// backup began, compacted (VACUUM INTO), and opens like any store file.
// dest must not exist.
func (b *Backend) Backup(ctx context.Context, dest string) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup: %w: %s already exists", eventstore.ErrInvalidArgument, dest)
	}
	// A connection of its own, not the writer: the copy is made from one
	// read snapshot while appends carry on. (The pooled readers are
	// query_only, which VACUUM INTO refuses even though it writes only
	// dest.)
	db, err := sqlx.Open("sqlite", dsn(b.path, "_pragma=busy_timeout("+strconv.FormatInt(b.opts.BusyTimeout.Milliseconds(), 10)+")"))
	if err != nil {
		return err
	}
	defer db.Close()
	start := b.logStart()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", dest)
	b.logSQL(ctx, "VACUUM INTO ?", []any{dest}, start, err)
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, fail(ctx, err))
	}
	return nil
}
