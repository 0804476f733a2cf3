// Package sqlite is the durable [eventstore.Backend], on SQLite through the
// pure-Go driver modernc.org/sqlite: no cgo, so it cross-compiles to any
// board Go supports.
//
// # Connections
//
// The database runs in WAL mode with one writer connection and a pool of
// reader connections: appends are serialized through the writer, while
// reads run beside them on their own snapshots. Every write transaction
// starts with BEGIN IMMEDIATE, and the busy timeout makes a second process
// on the same file wait its turn instead of failing at once. Event positions
// are assigned inside the write transaction, so commit order is position
// order: a reader that has seen position p never later finds a new event
// below p.
//
// # Group commit
//
// Concurrent appends share write transactions: while one commits, the
// appends that arrive queue, and the next transaction takes them all (up to
// 256). Each is checked against the state the appends before it in the
// group left, so a version conflict fails only its own append, and each
// Append returns only once its transaction has committed. A lone append
// runs at once, with no added latency. Under [SyncFull], where every commit
// waits for the disk, this is what lets many writers go faster than the
// disk flushes.
//
// # Claims
//
// A running consumer or forwarder holds a claim, a row of the file, so
// that a second instance of it fails with [eventstore.ErrConsumerRunning]
// whichever process on the file starts it. The claim lapses when its
// holder stops renewing it ([eventstore.ConsumerOptions.Lease]). On Linux a
// restart after kill -9 does not wait for that: each backend that claims
// holds a lock in the file named like the store with "-claims" appended, the
// kernel drops the lock when the process dies, and a claim whose holder's
// lock is gone is taken over at once. Elsewhere, a restart after a crash
// fails with ErrConsumerRunning until the lease has run out.
//
// # Durability
//
// [Options.Synchronous] chooses what a commit waits for. With
// [SyncNormal], the default, a commit is durable once it reaches the
// operating system: it survives the process being killed at any moment, but
// a power cut can lose the last few commits (never corrupt the file). With
// [SyncFull] every commit waits for the disk to report the WAL on stable
// storage, so it also survives power loss: the choice for a device on an SD
// card that may lose power, at the cost of a disk flush per commit.
//
// # Schema
//
// The schema is schema.sql in this package directory, embedded; its numbered
// migrations are applied at [Open], in one transaction each, and PRAGMA
// user_version records the last one. A file written by a newer version of
// this package is refused with [ErrSchemaTooNew].
package sqlite

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed schema.sql
var schemaSQL string

// ErrReadOnly reports a write to a store opened with [Options.ReadOnly].
var ErrReadOnly = errors.New("eventstore/sqlite: store opened read-only")

// ErrSchemaTooNew reports a store file whose schema version is newer than
// this package knows: it was written by a newer release, and opening it
// could damage it.
var ErrSchemaTooNew = errors.New("eventstore/sqlite: schema version newer than this release supports")

// Synchronous is SQLite's synchronous setting for commits; see the package
// documentation on durability.
type Synchronous string

const (
	// SyncNormal makes commits survive a crash of the process but not
	// always a power cut. The default.
	SyncNormal Synchronous = "NORMAL"
	// SyncFull makes commits survive a power cut too, at the cost of a disk
	// flush per commit.
	SyncFull Synchronous = "FULL"
)

// Options configure a [Backend]. The zero value, like a nil *Options, gives
// the defaults.
type Options struct {
	// Synchronous is the durability of a commit. Default: [SyncNormal].
	Synchronous Synchronous
	// BusyTimeout is how long a statement waits for a lock held by another
	// connection or process before it fails. Default: 5s.
	BusyTimeout time.Duration
	// ReadConns is the size of the reader connection pool. Default: the
	// number of CPUs, at least 2.
	ReadConns int
	// WatchInterval is how often a store with subscriptions checks the file
	// for commits made by other processes, which is the most their events
	// wait before subscribers see them. Commits through the same Store reach
	// its subscribers at once, without waiting for this. Default: 50ms.
	WatchInterval time.Duration
	// ReadOnly opens an existing file for reading only, as the eventstore
	// command does for its read commands: nothing is migrated or written,
	// and every write fails with [ErrReadOnly]. The file must be at this
	// release's schema version. Default: false.
	ReadOnly bool
	// LogSQL, when set, receives every SQL statement the backend runs, at
	// Info level, with its arguments, duration and error. For debugging: it
	// costs time on every call.
	LogSQL *slog.Logger
}

func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Synchronous == "" {
		out.Synchronous = SyncNormal
	}
	if out.Synchronous != SyncNormal && out.Synchronous != SyncFull {
		return out, fmt.Errorf("%w: synchronous %q: want NORMAL or FULL", eventstore.ErrInvalidArgument, out.Synchronous)
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = 5 * time.Second
	}
	if out.BusyTimeout < 0 {
		return out, fmt.Errorf("%w: busy timeout %v", eventstore.ErrInvalidArgument, out.BusyTimeout)
	}
	if out.WatchInterval == 0 {
		out.WatchInterval = 50 * time.Millisecond
	}
	if out.WatchInterval < 0 {
		return out, fmt.Errorf("%w: watch interval %v", eventstore.ErrInvalidArgument, out.WatchInterval)
	}
	if out.ReadConns == 0 {
		out.ReadConns = max(2, runtime.NumCPU())
	}
	if out.ReadConns < 0 {
		return out, fmt.Errorf("%w: read conns %d", eventstore.ErrInvalidArgument, out.ReadConns)
	}
	return out, nil
}

// Backend stores events in a SQLite file. Create it with [Open] and hand it
// to [eventstore.New]. It is safe for concurrent use.
type Backend struct {
	writer *sqlx.DB // one connection: every write goes through it
	reader *sqlx.DB // a pool of query_only connections
	path   string
	opts   Options
	closed atomic.Bool

	// insertEvent and the other statements of the write path are
	// prepared on the writer connection at Open: parsing them again for
	// every append was a third of its CPU time, and preparing inside a
	// transaction would wait for the one connection the transaction holds.
	insertEvent *sqlx.Stmt
	prepared    map[string]*sqlx.Stmt // by query text

	group  groupCommit
	groups atomic.Int64 // group transactions run, for tests

	// fault, set only by tests, fails chosen statements: fault injection
	// at the points no real fault can be aimed at.
	fault atomic.Pointer[func(query string) error]

	live liveness // how consumers' claims tell a holder's process is gone
}

var _ eventstore.Backend = (*Backend)(nil)

// Open opens the store file at path, creating it when it does not exist,
// and migrates its schema to the current version. A nil opts gives the
// defaults. path is a file name; ":memory:" is refused: use package memory
// for a store that lives in memory.
func Open(path string, opts *Options) (*Backend, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open %q: %w: want a file name (for an in-memory store use package memory)", path, eventstore.ErrInvalidArgument)
	}
	b := &Backend{path: path, opts: o}
	busy := strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10)
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}

	writerParams := []string{"_txlock=immediate", "_pragma=busy_timeout(" + busy + ")"}
	if o.ReadOnly {
		writerParams = append(writerParams, "mode=ro")
	} else {
		writerParams = append(writerParams, "_pragma=journal_mode(WAL)", "_pragma=synchronous("+string(o.Synchronous)+")")
	}
	b.writer, err = sqlx.Open("sqlite", dsn(path, writerParams...))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b.writer.SetMaxOpenConns(1)
	b.writer.SetMaxIdleConns(1)
	b.writer.SetConnMaxIdleTime(0)
	b.writer.SetConnMaxLifetime(0)
	if err := b.migrate(context.Background()); err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if b.insertEvent, err = b.writer.Preparex(sqlInsertEvent); err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, translate(err))
	}
	b.prepared = map[string]*sqlx.Stmt{sqlInsertEvent: b.insertEvent}
	for _, q := range writePath {
		st, err := b.writer.Preparex(q)
		if err != nil {
			b.closeStatements()
			b.writer.Close()
			return nil, fmt.Errorf("open %s: %w", path, translate(err))
		}
		b.prepared[q] = st
	}

	readerParams := []string{"_pragma=busy_timeout(" + busy + ")", "_pragma=query_only(1)"}
	if o.ReadOnly {
		readerParams = append(readerParams, "mode=ro")
	}
	b.reader, err = sqlx.Open("sqlite", dsn(path, readerParams...))
	if err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b.reader.SetMaxOpenConns(o.ReadConns)
	b.reader.SetMaxIdleConns(o.ReadConns)
	return b, nil
}

// dsn builds a driver data source name: the path as a file: URI (so any
// character in it is safe) and the driver's parameters.
func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: path, OmitHost: true}
	return u.String() + "?" + strings.Join(params, "&")
}

// migrations splits schema.sql into its numbered sections.
var migrations = sync.OnceValue(func() []string {
	marker := regexp.MustCompile(`(?m)^-- migration (\d+)\s*$`)
	locs := marker.FindAllStringSubmatchIndex(schemaSQL, -1)
	out := make([]string, len(locs))
	for i, loc := range locs {
		n, _ := strconv.Atoi(schemaSQL[loc[2]:loc[3]])
		if n != i+1 {
			panic(fmt.Sprintf("sqlite: schema.sql: migration %d where %d belongs", n, i+1))
		}
		end := len(schemaSQL)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out[i] = schemaSQL[loc[1]:end]
	}
	return out
})

// SchemaVersion is the schema version of files this release writes.
func SchemaVersion() int { return len(migrations()) }

// migrate brings the file's schema up to date, one transaction per
// migration, so that two processes opening a new file at once do not both
// apply it.
func (b *Backend) migrate(ctx context.Context) error {
	all := migrations()
	if b.opts.ReadOnly {
		var v int
		if err := b.writer.GetContext(ctx, &v, "PRAGMA user_version"); err != nil {
			return translate(err)
		}
		switch {
		case v > len(all):
			return fmt.Errorf("%w: the file is at version %d, this release knows up to %d", ErrSchemaTooNew, v, len(all))
		case v < len(all):
			return fmt.Errorf("%w: the file is at schema version %d and needs migrating to %d: open it once read-write", ErrReadOnly, v, len(all))
		}
		return nil
	}
	for {
		tx, err := b.writer.BeginTxx(ctx, nil)
		if err != nil {
			return translate(err)
		}
		var v int
		if err := tx.GetContext(ctx, &v, "PRAGMA user_version"); err != nil {
			tx.Rollback()
			return translate(err)
		}
		if v > len(all) {
			tx.Rollback()
			return fmt.Errorf("%w: the file is at version %d, this release knows up to %d", ErrSchemaTooNew, v, len(all))
		}
		if v == len(all) {
			return translate(tx.Rollback())
		}
		if _, err := tx.ExecContext(ctx, all[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("schema migration %d: %w", v+1, translate(err))
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return translate(err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema migration %d: %w", v+1, translate(err))
		}
		if b.opts.LogSQL != nil {
			b.opts.LogSQL.Info("eventstore/sqlite: schema migrated", "version", v+1)
		}
	}
}

// Close closes the database. Calls after Close fail with
// [eventstore.ErrClosed].
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return eventstore.ErrClosed
	}
	return errors.Join(b.closeStatements(), b.reader.Close(), b.writer.Close(), b.live.close())
}

// writePath are the statements every append runs.
var writePath = []string{sqlStreamState, sqlUpsertStream, sqlIdempotencyKey, sqlSavepoint, sqlRelease, sqlRollbackTo}

func (b *Backend) closeStatements() error {
	var errs []error
	for _, st := range b.prepared {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// stmt returns query prepared for tx when it is one of the write path's,
// and nil otherwise.
func (b *Backend) stmt(ctx context.Context, tx *sqlx.Tx, query string) *sqlx.Stmt {
	if st := b.prepared[query]; st != nil {
		return tx.StmtxContext(ctx, st)
	}
	return nil
}

func (b *Backend) checkOpen() error {
	if b.closed.Load() {
		return eventstore.ErrClosed
	}
	return nil
}

// logSQL reports a statement to Options.LogSQL.
func (b *Backend) logSQL(ctx context.Context, query string, args []any, start time.Time, err error) {
	if b.opts.LogSQL == nil {
		return
	}
	attrs := []slog.Attr{
		slog.String("sql", strings.Join(strings.Fields(query), " ")),
		slog.Any("args", args),
		slog.Duration("elapsed", time.Since(start)),
	}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	b.opts.LogSQL.LogAttrs(ctx, slog.LevelInfo, "eventstore/sqlite: sql", attrs...)
}

// fail translates err, reporting ctx's error instead when ctx is done: the
// driver interrupts a statement whose context ends, with an error of its
// own.
func fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	return translate(err)
}

// translate maps driver errors to the eventstore sentinels where one
// applies. It is the one place that knows the driver's error codes.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		if se.Code()&0xff == sqlite3.SQLITE_READONLY {
			return fmt.Errorf("%w: %v", ErrReadOnly, err)
		}
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			if strings.Contains(se.Error(), "events.id") {
				return fmt.Errorf("%w: %v", eventstore.ErrDuplicateEvent, err)
			}
		}
		return err
	}
	// database/sql does not export its "database is closed" error.
	if strings.Contains(err.Error(), "sql: database is closed") {
		return eventstore.ErrClosed
	}
	return err
}
