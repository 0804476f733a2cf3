package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
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

// faultBackupPlace names, for fault injection in tests, the moment the
// backup's copy is complete and checked but not yet in place.
const faultBackupPlace = "-- backup: put the copy in place"

// Backup writes a consistent copy of the store to a new file at dest,
// while writers go on: the copy holds every event committed before the
// backup began, compacted (VACUUM INTO), and opens like any store file.
// It works on a read-only Backend too.
//
// dest must be a plain file path that does not exist: "", ":memory:", a
// "file:" URI, a directory and an existing file are refused with
// [eventstore.ErrInvalidArgument], and nothing is written. The copy is
// written to a temporary file beside dest, checked (SQLite's quick_check,
// and the store's schema version), flushed to the disk and only then
// renamed to dest, so dest exists only once it is complete: a backup that
// fails or is killed leaves no dest (a killed one may leave its temporary
// file, named after dest with a leading dot). A backup whose context ends
// stops and removes its temporary file.
func (b *Backend) Backup(ctx context.Context, dest string) (err error) {
	if err := b.checkOpen(); err != nil {
		return err
	}
	abs, err := backupPath(dest)
	if err != nil {
		return err
	}
	// The temporary name is created empty, which VACUUM INTO accepts, so
	// no other process can take it meanwhile. An absolute path is never
	// read as a URI.
	f, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".backup-*")
	if err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	tmp := f.Name()
	f.Close()
	placed := false
	defer func() {
		if !placed {
			os.Remove(tmp)
		}
	}()
	if err := b.copyTo(ctx, tmp); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := b.injected(faultBackupPlace); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	if placed, err = place(tmp, abs); err != nil {
		return fmt.Errorf("backup to %s: %w", dest, err)
	}
	return nil
}

// backupPath checks the dest of a backup and returns it as an absolute
// path.
func backupPath(dest string) (string, error) {
	if dest == "" || dest == ":memory:" || strings.HasPrefix(dest, "file:") || strings.HasSuffix(dest, string(filepath.Separator)) || strings.HasSuffix(dest, "/") {
		return "", fmt.Errorf("backup to %q: %w: want the path of a new file", dest, eventstore.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(dest)
	if err != nil {
		return "", fmt.Errorf("backup to %s: %w", dest, err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return "", fmt.Errorf("backup to %s: %w: it already exists", dest, eventstore.ErrInvalidArgument)
	}
	return abs, nil
}

// copyTo writes the copy into the empty file tmp, checks it and flushes it
// to the disk.
func (b *Backend) copyTo(ctx context.Context, tmp string) error {
	if fi, err := os.Stat(b.path); err == nil { // the store's permissions, not CreateTemp's 0600
		if err := os.Chmod(tmp, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	if err := b.vacuumInto(ctx, tmp); err != nil {
		return err
	}
	if err := checkBackup(ctx, tmp); err != nil {
		return fmt.Errorf("the copy is damaged: %w", err)
	}
	return syncFile(tmp)
}

// place puts the complete copy tmp in place at abs. It reports whether it
// did, even when flushing the directory then failed.
func place(tmp, abs string) (bool, error) {
	// A link, unlike a rename, fails when dest has appeared meanwhile.
	// Where links are not supported (FAT), rename.
	if err := os.Link(tmp, abs); err != nil {
		if errors.Is(err, os.ErrExist) {
			return false, fmt.Errorf("%w: it already exists", eventstore.ErrInvalidArgument)
		}
		if err := os.Rename(tmp, abs); err != nil {
			return false, err
		}
	} else {
		os.Remove(tmp)
	}
	return true, syncDir(filepath.Dir(abs))
}

// vacuumInto copies the store into the empty file tmp.
func (b *Backend) vacuumInto(ctx context.Context, tmp string) error {
	// A connection of its own, not the writer: the copy is made from one
	// read snapshot while appends carry on. (The pooled readers are
	// query_only, which VACUUM INTO refuses even though it writes only
	// the copy.)
	db, err := b.openReader()
	if err != nil {
		return err
	}
	defer db.Close()
	start := b.logStart()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", tmp)
	b.logSQL(ctx, "VACUUM INTO ?", []any{tmp}, start, err)
	return fail(ctx, err)
}

// checkBackup checks the copy at path: SQLite's quick_check, and the
// schema version of this release. It reads the copy as immutable, so that
// no -wal or -shm file is made beside it.
func checkBackup(ctx context.Context, path string) error {
	db, err := sqlx.Open("sqlite", dsn(path, "mode=ro", "immutable=1"))
	if err != nil {
		return err
	}
	defer db.Close()
	var lines []string
	if err := db.SelectContext(ctx, &lines, "PRAGMA quick_check"); err != nil {
		return fail(ctx, err)
	}
	if len(lines) != 1 || lines[0] != "ok" {
		return errors.New(strings.Join(lines, "; "))
	}
	v, err := readSchemaVersion(ctx, db)
	if err != nil {
		return fail(ctx, err)
	}
	if v != SchemaVersion() {
		return fmt.Errorf("schema version %d, want %d", v, SchemaVersion())
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// syncDir makes a rename in dir durable. Windows cannot sync a
// directory, and needs not.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
