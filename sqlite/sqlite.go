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
// 256), reading their streams' records with one statement, creating those
// of the streams they start with two, and writing their events with a few
// multi-row statements (the record of a stream that exists is not written:
// see Storage). Each is checked against the
// state the appends before it in the group left, so a version conflict (or
// a purged stream, or an idempotency key already used) fails or answers
// only its own append, and each Append returns only once its transaction
// has committed. A statement that fails (an event ID already stored)
// rolls the group back, and its appends run one by one. A lone append
// runs at once, with no added latency. Under [SyncFull], where every commit
// waits for the disk, this is what lets many writers go faster than the
// disk flushes. The append that leads a group returns with its commit, and
// the next group is led by one of the appends in it, so no caller waits for
// more commits than its own group's. An append that has not been taken into a
// transaction yet returns as soon as its context ends, and is not written;
// without a deadline it waits for the writer at most [Options.BusyTimeout]
// ([ErrWriterTimeout]).
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
// The schema is schema.sql at the root of the module, the one copy,
// embedded there as [eventstore.SchemaSQL]; its comments describe every
// table and column, for people who open a store file with the sqlite3
// shell. Its numbered migrations are applied at [Open], in one transaction
// each (a process killed during a migration leaves the file at the version
// before it), and the store's own table eventstore_schema records the last
// one. A file written by a newer version of this package is refused with
// [ErrSchemaTooNew]. Files of releases before eventstore_schema kept the
// version in PRAGMA user_version: Open takes it from there once, records it
// in eventstore_schema and never reads or writes user_version again. Files
// of every earlier release migrate in place, keeping every position, ID,
// version, stream life, deletion, tombstone, snapshot, checkpoint and the
// rest; testdata/ holds one written by each, which the tests migrate.
//
// # Storage
//
// The layout (schema versions 7 and 9) writes as few pages per event as
// the contract allows: an append of one event to an existing stream writes
// the event's row, one entry in each of two indexes (stream, life and
// version; category) and one row of event_ids, about 4.35 pages of WAL; an
// append of 100 events about 17.75. Event IDs are kept unique through
// event_ids, a table keyed by an integer taken from the ID (a UUIDv7's
// first 8 bytes), rather than an index of the IDs: the default IDs grow
// with time, so their keys are added at the table's right edge, which
// SQLite grows by a page at a time, where an index would rebalance its
// last leaves on most appends. IDs of another kind work the same, at an
// index's cost; two IDs with the same key are both kept (schema.sql).
// Events carry
// integer keys of their stream and category, not their text. A stream's
// version is read from its index, so an append does not rewrite the
// stream's record, and a Backend remembers the streams it appended to last
// so that it does not read their records either (the insert checks in SQL
// that the stream is where it remembers, so another process's appends are
// never overwritten). Positions are the events table's rowid: never handed
// out twice, because a purge that removes the highest one records it in
// log_high_water. An index of events by type is kept only with
// [Options.TypeIndex]: a store that filters by type alone wants it, one
// that does not saves its page per append.
//
// Every event is stored with a CRC-32C checksum of its stream ID, version,
// type, data and metadata (defined byte by byte in schema.sql), written by
// Append and computed for existing events by the migration.
// [eventstore.Store.Verify] recomputes them all and reports a mismatch by
// stream, version and position; with [Options.VerifyChecksums] every read
// checks the events it returns and fails with [ErrChecksum].
//
// # Sharing the application's file
//
// The store may live in the application's own SQLite file, which is what
// lets [eventstore.Store.Transact] and exactly-once consumers commit the
// application's rows and the store's together. Open adds the store's
// tables (streams, events, stream_categories, event_ids, event_ids_shared,
// log_high_water, checkpoints, processed, parked, snapshots,
// idempotency_keys, claims, retention_policies and eventstore_schema, and
// those of later migrations)
// and leaves everything else alone: the application's tables and its PRAGMA
// user_version. A table of the application's with one of those names makes
// Open fail, naming it, with nothing changed. Open switches the file to WAL
// mode, which the store needs (its readers run beside the writer): the mode
// is kept in the file, so the application's own connections use WAL too,
// with the -wal and -shm files beside it, and the file must be on a local
// disk, not a network file system. The application needs no connection of
// its own: it writes its tables in [eventstore.Store.Transact] or an
// exactly-once consumer ([Tx]) and reads them with [Backend.Read]; for tests,
// [OpenMemory] opens a throwaway store with the same SQL.
//
// # Reading without write access
//
// With [Options.ReadOnly], a store that no process has open (there is no
// -wal file beside it) is read on a read-only file, directory or mount, by
// a user who may only read the file, and nothing is created beside it:
// SQLite would otherwise create the -wal and -shm files that a WAL-mode
// file is read through, and a read-only connection never removes them.
// Such a store is read as immutable, without locks. When a writer opens
// the file later, its -wal appears and the read-only Backend moves to
// ordinary read-only connections that see the writer's commits (a read
// already running when the writer checkpoints may fail or be wrong: it
// read a file it took as unchanging). A store that a writer has open is
// read through the writer's -wal and -shm files, which need not be
// writable; if the -wal exists without its -shm and this process cannot
// create one, Open says so.
//
// # Storage budget
//
// [Options.MaxBytes] bounds what the store takes on the disk: the
// database file, its -wal file and its -shm file together. The -wal file
// gets an eighth of the budget, at most 5.2 MiB (the writer copies it into
// the database file itself when it passes three quarters of that, in the
// commit, and it is cut back to its share when it starts again; no
// checkpointer runs beside it, see Checkpoints), the -shm file 32 KiB, the
// database file the rest, enforced by SQLite's max_page_count on the
// writer. A write that would grow the database file past its share fails
// with [eventstore.ErrStorageFull] and writes nothing; so does any write
// on a disk that is full, budget or not (SQLITE_FULL, ENOSPC). The -wal
// file passes its share only while one transaction is bigger than a
// quarter of it, or a read that lasts keeps the checkpoint from copying
// it: the first commit after such a read copies the -wal file into the
// database and truncates it (waiting up to 20 ms for the reads under way).
// Events removed (a purge, a prune) leave their pages free in the
// file, and later writes use them first: once room is freed, writes
// succeed again, and [Backend.ReclaimSpace] gives the free pages back to
// the file system ([eventstore.Store.Prune] calls it at its end). A store crossing [Options.WarnBytes] reports a
// "storage.low" happening to [eventstore.Hooks.Event], a refused write
// "storage.full", and the way back under the threshold "storage.ok". The
// budget is the Backend's: another process writing the file without it
// is not held to it. Set it below the disk's free room: on a disk that is
// itself full, even a purge or a prune may fail (it writes to the -wal
// file too) until room is made on the disk by other means, while a store
// at its budget can always make room of its own.
//
// Open creates new files with auto_vacuum=INCREMENTAL, so that
// ReclaimSpace can shrink them; files of earlier releases keep what they
// had, and the command 'eventstore vacuum' converts one (see
// [Backend.ReclaimSpace]). Without MaxBytes, the -wal file is still cut
// back to 21 MiB when it starts again after a big transaction.
//
// # Checkpoints
//
// The WAL is copied into the database file (a checkpoint) by a goroutine
// of the Backend's own, on a connection of its own, started by [Open] for
// a store that is not read-only and stopped by Close: each time the writer
// has written 1,000 pages to the WAL (SQLite's default), it runs a PASSIVE
// checkpoint, which appends do not wait for, and once all of the WAL is
// copied the next commit starts it again from its beginning. So no Append
// copies the WAL in its commit, as SQLite's own checkpoint would every
// 1,000 pages (a few milliseconds each time, at the tail of the appends'
// latency). When appends follow each other so closely that the WAL, each
// checkpoint copying only the frames written before it began, grows past
// 2,000 pages, the goroutine copies the last few dozen frames with the
// writer held (a millisecond or so), so that it starts again. The writer
// keeps SQLite's own checkpoint at 4,000 pages (16 MiB of WAL) as the
// bound of the WAL when the goroutine falls behind; a -wal file that a
// bigger transaction grew past 21 MiB is cut back to that when it starts
// again. With [Options.MaxBytes] there is no such goroutine: SQLite runs
// one checkpoint at a time, and a commit whose checkpoint met the
// goroutine's would let the WAL grow past its share of the budget, so the
// writer copies the WAL in the commit as SQLite does, at three quarters of
// the share (see Storage budget). A read that lasts keeps any checkpoint from
// copying the frames it may need.
//
// # Locks
//
// A write that finds the file locked by another process waits up to
// [Options.BusyTimeout], then fails with [ErrBusy], saying what waited and
// for how long. Processes that open a brand-new file at once all succeed:
// one applies the schema, the others wait for it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
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

// schemaSQL is the schema, whose one copy is the root package's.
var schemaSQL = eventstore.SchemaSQL

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
	// connection or process before it fails with [ErrBusy], and how long a
	// write whose context has no deadline waits for the store's own writer,
	// held by another transaction of this Backend, before it fails with
	// [ErrWriterTimeout]. Default: 5s.
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
	// release's schema version. It needs no write access to the file, its
	// directory or its mount, and creates no -wal or -shm file when no
	// process has the store open; see "Reading without write access" in
	// the package documentation. Default: false.
	ReadOnly bool
	// MaxBytes, when positive, is the storage budget of the store: the
	// database file together with its -wal file. A write (an Append, a
	// checkpoint, any call that writes) that would grow the file past
	// its share fails with [eventstore.ErrStorageFull] and writes
	// nothing; once events are removed ([eventstore.Store.PurgeStream],
	// a prune), their space is used again, and [Backend.ReclaimSpace]
	// gives it back to the file system. See "Storage budget" in the
	// package documentation for what it counts. At least 1 MiB. Default:
	// 0, no budget (the disk's own size is the limit, and a full disk
	// fails writes with ErrStorageFull too).
	MaxBytes int64
	// WarnBytes is the use of the budget, in bytes, past which the
	// store warns that it runs low on space: a "storage.low" happening
	// to [eventstore.Hooks.Event], once each time the use crosses it.
	// Only with MaxBytes. Default: 90% of MaxBytes.
	WarnBytes int64
	// TypeIndex keeps an index of events by type, so that a ReadAll or a
	// subscription filtered by event type alone walks only the events of
	// its types. It costs a page written per Append (of an event's type)
	// and about 30 bytes per event. Without it a type filter still works:
	// it walks the index of the filter's streams or categories when it has
	// them, and the whole log in position order otherwise. Open creates
	// the index when this is set; it leaves an index created earlier in
	// place when it is not (drop it with DROP INDEX events_type). Default:
	// false.
	TypeIndex bool
	// VerifyChecksums makes every read check each event against the
	// CRC-32C checksum stored with it, failing with [ErrChecksum] on a
	// mismatch. [eventstore.Store.Verify] checks them all whatever this
	// says. Default: false.
	VerifyChecksums bool
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
	if out.MaxBytes != 0 && out.MaxBytes < minMaxBytes {
		return out, fmt.Errorf("%w: max bytes %d: want 0 (no budget) or at least %d", eventstore.ErrInvalidArgument, out.MaxBytes, minMaxBytes)
	}
	if out.WarnBytes < 0 || out.WarnBytes > 0 && out.MaxBytes == 0 || out.WarnBytes > out.MaxBytes {
		return out, fmt.Errorf("%w: warn bytes %d: want 0 (the default) or up to max bytes (%d)", eventstore.ErrInvalidArgument, out.WarnBytes, out.MaxBytes)
	}
	if out.WarnBytes == 0 {
		out.WarnBytes = out.MaxBytes - out.MaxBytes/10
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

	report atomic.Pointer[func(eventstore.Commit)] // see ReportCommits

	// fault, set only by tests, fails chosen statements: fault injection
	// at the points no real fault can be aimed at.
	fault atomic.Pointer[func(query string) error]

	live liveness // how consumers' claims tell a holder's process is gone

	typeIndex bool        // the file has events_type: type filters may walk it
	known     streamCache // the streams appended to last
	pages     sync.Pool   // *[]row: page buffers of reads, pageSize rows
	streamIDs streamIDs   // stream IDs by key, for reads

	// Guarded by the writer lock (see streamCache):
	dataVersion int64 // the file's PRAGMA data_version when the cache was last trusted
	keepTrust   bool  // the write transaction ending is a group commit's: release keeps the cache's trust

	removeDir string // the directory Close removes, for OpenMemory

	space space // the storage budget

	side         sideConn     // checkpoints of prunes and of ckpt
	ckpt         checkpointer // copies the WAL off the commits' path
	pruneBatches atomic.Int64 // prune batches committed

	// lost is the error that made SQLite roll back the transaction of
	// a Transact function (or an exactly-once handler) under it: the
	// transaction ends in a rollback with it, whatever the function
	// returns. Only the writer's holder touches it.
	lost error
}

var _ eventstore.Backend = (*Backend)(nil)

// Open opens the store file at path, creating it when it does not exist,
// and migrates its schema to the current version. A nil opts gives the
// defaults. path is a file name; ":memory:" is refused: use [OpenMemory]
// (or package memory, without SQL) for a store that lives in memory.
func Open(path string, opts *Options) (*Backend, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open %q: %w: want a file name (for an in-memory store use OpenMemory)", path, eventstore.ErrInvalidArgument)
	}
	b := &Backend{path: path, opts: o}
	if o.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		b.writer, err = b.openReader("_txlock=immediate")
	} else {
		params := append(newFileParams(path), "_txlock=immediate", "_pragma=busy_timeout("+b.busyMillis()+")",
			"_pragma=journal_mode(WAL)", "_pragma=synchronous("+string(o.Synchronous)+")")
		b.writer, err = sqlx.Open("sqlite", dsn(path, params...))
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b.writer.SetMaxOpenConns(1)
	b.writer.SetMaxIdleConns(1)
	b.writer.SetConnMaxIdleTime(0)
	b.writer.SetConnMaxLifetime(0)
	if err := b.migrate(context.Background()); err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, b.cannotRead(err))
	}
	if !o.ReadOnly {
		if err := b.initSpace(context.Background()); err != nil {
			b.writer.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
	}
	if err := b.openTypeIndex(); err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if b.insertEvent, err = b.writer.Preparex(sqlInsertEvent); err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, translate(err))
	}
	b.prepared = map[string]*sqlx.Stmt{sqlInsertEvent: b.insertEvent}
	if b.space.usage != nil {
		b.prepared[sqlUsage] = b.space.usage
	}
	for _, q := range writePath {
		st, err := b.writer.Preparex(q)
		if err != nil {
			b.closeStatements()
			b.writer.Close()
			return nil, fmt.Errorf("open %s: %w", path, translate(err))
		}
		b.prepared[q] = st
	}

	b.reader, err = b.openReader("_pragma=query_only(1)")
	if err != nil {
		b.writer.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b.reader.SetMaxOpenConns(o.ReadConns)
	b.reader.SetMaxIdleConns(o.ReadConns)
	b.startCheckpointer()
	return b, nil
}

// openTypeIndex creates the index of events by type when
// [Options.TypeIndex] asks for it, and notes whether the file has one.
func (b *Backend) openTypeIndex() error {
	if b.opts.TypeIndex && !b.opts.ReadOnly {
		if _, err := b.writer.Exec(`CREATE INDEX IF NOT EXISTS events_type ON events (type)`); err != nil {
			return translate(err)
		}
	}
	err := b.writer.Get(&b.typeIndex, `SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'index' AND name = 'events_type'`)
	return translate(err)
}

func (b *Backend) busyMillis() string {
	return strconv.FormatInt(b.opts.BusyTimeout.Milliseconds(), 10)
}

// cannotRead explains why a read-only Backend could not read its file,
// when SQLite's own message ("unable to open database file", "attempt to
// write a readonly database") would not.
func (b *Backend) cannotRead(err error) error {
	var se *msqlite.Error
	if !b.opts.ReadOnly || !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
	default:
		return err
	}
	f, openErr := os.Open(b.path)
	if openErr != nil {
		return fmt.Errorf("%w: %v", err, openErr)
	}
	f.Close()
	if !walExists(b.path) { // read as immutable: the file itself was the trouble
		return err
	}
	if _, statErr := os.Lstat(b.path + "-shm"); errors.Is(statErr, os.ErrNotExist) {
		return fmt.Errorf("%w: the store has a write-ahead log (%s-wal) but no -shm file, and this process cannot create one "+
			"(the directory or the mount is read-only, or not ours): a writer has the file open, or stopped without closing it; "+
			"open it once with write access, or read it where the -shm file can be created", err, filepath.Base(b.path))
	}
	return fmt.Errorf("%w: the store has a write-ahead log (%s-wal) and this process cannot use its -shm file: "+
		"open it with write access, or when no process has it open", err, filepath.Base(b.path))
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

// schemaPreamble is the part of schema.sql before migration 1: the
// migration runner's own eventstore_schema table.
var schemaPreamble = sync.OnceValue(func() string {
	return schemaSQL[:strings.Index(schemaSQL, "\n-- migration 1\n")]
})

// SchemaVersion is the schema version of files this release writes.
func SchemaVersion() int { return len(migrations()) }

// legacyTables are the tables each migration created in the releases that
// kept the schema version in PRAGMA user_version, before the
// eventstore_schema table: migration i+1 created legacyTables[i].
var legacyTables = [][]string{
	{"streams", "events"},
	{"checkpoints", "processed", "parked"},
	{"snapshots"},
	{"idempotency_keys"},
}

// readSchemaVersion returns the store's schema version in the file: 0 when
// the store is not in it yet.
func readSchemaVersion(ctx context.Context, q sqlx.QueryerContext) (int, error) {
	v, _, err := schemaState(ctx, q)
	return v, err
}

// schemaState reads the store's schema version from its eventstore_schema
// table, and says whether the table records it. In a file of a release
// before that table (recorded is false) the version is the file's PRAGMA
// user_version, which those releases wrote, when the file has the store's
// tables; when the application has since set user_version to a value of
// its own, the version is read from which of the store's tables exist.
func schemaState(ctx context.Context, q sqlx.QueryerContext) (v int, recorded bool, err error) {
	var names []string
	if err := sqlx.SelectContext(ctx, q, &names, `SELECT name FROM sqlite_schema WHERE type = 'table'`); err != nil {
		return 0, false, translate(err)
	}
	tables := map[string]bool{}
	for _, n := range names {
		tables[n] = true
	}
	if tables["eventstore_schema"] {
		err := sqlx.GetContext(ctx, q, &v, `SELECT version FROM eventstore_schema WHERE id = 1`)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, true, nil
		}
		return v, true, translate(err)
	}
	// The store's tables, not tables of the application's that happen to
	// have their names: check their columns.
	var store bool
	if err := sqlx.GetContext(ctx, q, &store, `SELECT
		(SELECT count(*) FROM pragma_table_info('events') WHERE name IN
			('position', 'id', 'stream_id', 'life', 'version', 'category', 'type', 'data', 'metadata', 'recorded_at')) = 10
		AND (SELECT count(*) FROM pragma_table_info('streams') WHERE name IN
			('id', 'category', 'life', 'version', 'created_at', 'updated_at')) = 6`); err != nil {
		return 0, false, translate(err)
	}
	if !store {
		return 0, false, nil
	}
	if err := sqlx.GetContext(ctx, q, &v, `PRAGMA user_version`); err != nil {
		return 0, false, translate(err)
	}
	if v >= 1 && v <= len(legacyTables) {
		return v, false, nil
	}
	v = 0
	for _, created := range legacyTables {
		for _, t := range created {
			if !tables[t] {
				return v, false, nil
			}
		}
		v++
	}
	return v, false, nil
}

// migrate brings the file's schema up to date, one transaction per
// migration, so that two processes opening a new file at once do not both
// apply it. The version is recorded in the store's own eventstore_schema
// table: PRAGMA user_version belongs to the application whose file it may
// be. A file that is busy (another process is switching a new file to WAL
// mode, which waits for no busy timeout) is tried again until
// [Options.BusyTimeout] has passed.
func (b *Backend) migrate(ctx context.Context) error {
	start := time.Now()
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		err := b.migrateOnce(ctx)
		if !errors.Is(err, ErrBusy) || time.Since(start) >= b.opts.BusyTimeout {
			return b.waited(err, "opening the file", start)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
	}
}

func (b *Backend) migrateOnce(ctx context.Context) error {
	all := migrations()
	if b.opts.ReadOnly {
		v, err := readSchemaVersion(ctx, b.writer)
		switch {
		case err != nil:
			return err
		case v > len(all):
			return fmt.Errorf("%w: the file is at version %d, this release knows up to %d", ErrSchemaTooNew, v, len(all))
		case v < len(all):
			return fmt.Errorf("%w: the file is at schema version %d and needs migrating to %d: open it once read-write", ErrReadOnly, v, len(all))
		}
		return nil
	}
	// A migration that rebuilds the log inserts into its indexes out of
	// order: a larger page cache while it runs saves most of its reads.
	if _, err := b.writer.ExecContext(ctx, `PRAGMA cache_size = -65536`); err != nil {
		return translate(err)
	}
	defer b.writer.ExecContext(ctx, `PRAGMA cache_size = -2000`)
	for {
		tx, err := b.writer.BeginTxx(ctx, nil)
		if err != nil {
			return translate(err)
		}
		v, recorded, err := schemaState(ctx, tx)
		if err != nil {
			tx.Rollback()
			return err
		}
		if v > len(all) {
			tx.Rollback()
			return fmt.Errorf("%w: the file is at version %d, this release knows up to %d", ErrSchemaTooNew, v, len(all))
		}
		if v == len(all) && recorded {
			return translate(tx.Rollback())
		}
		if !recorded {
			if _, err := tx.ExecContext(ctx, schemaPreamble()); err != nil {
				tx.Rollback()
				return fmt.Errorf("schema version table: %w", translate(err))
			}
		}
		migrated := v < len(all)
		if migrated {
			if err := applyMigration(ctx, tx, v+1, all[v]); err != nil {
				tx.Rollback()
				return fmt.Errorf("schema migration %d: %w", v+1, err)
			}
			v++
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO eventstore_schema (id, version) VALUES (1, ?)
			ON CONFLICT (id) DO UPDATE SET version = excluded.version`, v); err != nil {
			tx.Rollback()
			return translate(err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("schema migration %d: %w", v, translate(err))
		}
		if b.opts.LogSQL != nil && migrated {
			b.opts.LogSQL.Info("eventstore/sqlite: schema migrated", "version", v)
		}
	}
}

// eventsRebuilt is the migration that last rebuilt the events table.
const eventsRebuilt = 9

// applyMigration applies migration n, query, in tx. The events table's
// optional index (events_type, see [Options.TypeIndex]) goes with the
// table when a migration rebuilds it: it is made again when the file had
// it.
func applyMigration(ctx context.Context, tx *sqlx.Tx, n int, query string) error {
	var typeIndex bool
	if n == eventsRebuilt {
		err := tx.GetContext(ctx, &typeIndex, `SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'index' AND name = 'events_type'`)
		if err != nil {
			return translate(err)
		}
	}
	if _, err := tx.ExecContext(ctx, query); err != nil {
		return translate(err)
	}
	if typeIndex {
		if _, err := tx.ExecContext(ctx, `CREATE INDEX events_type ON events (type)`); err != nil {
			return translate(err)
		}
	}
	return nil
}

// waited says, when err is [ErrBusy], what waited for the lock and for how
// long.
func (b *Backend) waited(err error, what string, start time.Time) error {
	if !errors.Is(err, ErrBusy) {
		return err
	}
	return fmt.Errorf("%s waited %v for the lock (busy timeout %v): %w",
		what, time.Since(start).Round(time.Millisecond), b.opts.BusyTimeout, err)
}

// Close closes the database. Calls after Close fail with
// [eventstore.ErrClosed].
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return eventstore.ErrClosed
	}
	b.stopCheckpointer()
	return errors.Join(b.closeStatements(), b.reader.Close(), b.writer.Close(), b.side.close(), b.live.close(), b.removeTemp())
}

// writePath are the statements every append runs.
var writePath = append([]string{sqlStreamState, sqlInsertNextEvent, sqlInsertCategory, sqlInsertStream, sqlRestartStream, sqlIdempotencyKey, sqlSavepoint, sqlRelease, sqlRollbackTo},
	append(groupPath(), idPath()...)...)

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
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_READONLY:
			return fmt.Errorf("%w: %w", ErrReadOnly, err)
		case sqlite3.SQLITE_BUSY:
			return fmt.Errorf("%w: %w", ErrBusy, err)
		case sqlite3.SQLITE_FULL: // the budget (max_page_count), or the disk
			return fmt.Errorf("%w: %w", eventstore.ErrStorageFull, err)
		}
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			if strings.Contains(se.Error(), "events.id") || strings.Contains(se.Error(), "event_ids_shared.id") {
				return fmt.Errorf("%w: %v", eventstore.ErrDuplicateEvent, err)
			}
		}
		return err
	}
	if isDiskFull(err) {
		return fmt.Errorf("%w: %w", eventstore.ErrStorageFull, err)
	}
	// database/sql does not export its "database is closed" error.
	if strings.Contains(err.Error(), "sql: database is closed") {
		return eventstore.ErrClosed
	}
	return err
}
