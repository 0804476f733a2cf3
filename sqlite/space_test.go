package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// recorder keeps the storage happenings a store reports.
type recorder struct {
	mu  sync.Mutex
	got []eventstore.Happening
}

func (r *recorder) hooks() eventstore.Hooks {
	return eventstore.Hooks{Event: func(_ context.Context, h eventstore.Happening) {
		if h.Category != eventstore.CategoryStorage {
			return
		}
		r.mu.Lock()
		r.got = append(r.got, h)
		r.mu.Unlock()
	}}
}

func (r *recorder) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, h := range r.got {
		out = append(out, h.Name)
	}
	return out
}

// onDisk is what a store takes on the disk: its file, -wal and -shm.
func onDisk(path string) (n int64) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// fill appends events of size bytes, one per Append, to the streams
// prefix-0 to prefix-(streams-1) in turn, until an Append fails; it returns that error
// and how many events it appended.
func fill(ctx context.Context, s *eventstore.Store, prefix string, streams, size int) (int, error) {
	data := bytes.Repeat([]byte("x"), size)
	for n := 0; ; n++ {
		_, err := s.Append(ctx, fmt.Sprintf("%s-%d", prefix, n%streams), eventstore.Any, eventstore.Event{Type: "Filled", Data: data})
		if err != nil {
			return n, err
		}
		if n > 1_000_000 {
			return n, errors.New("never full")
		}
	}
}

func countEvents(t *testing.T, ctx context.Context, s *eventstore.Store) int {
	t.Helper()
	n := 0
	for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestBudget_Append fills a store with a budget smaller than the disk:
// it warns first, then refuses the Append that does not fit with
// ErrStorageFull, writing nothing of it, and never takes more than its
// budget on the disk, -wal included. Once streams are purged, appends
// succeed again, the store says it has room, and ReclaimSpace gives the
// room back to the file system.
func TestBudget_Append(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	const budget = 2 << 20
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, &sqlite.Options{MaxBytes: budget})
	is.NoErr(err)
	var rec recorder
	s := eventstore.New(b, &eventstore.Options{Hooks: rec.hooks()})
	defer s.Close()

	appended, err := fill(ctx, s, "fill", 10, 1000)
	is.True(errors.Is(err, eventstore.ErrStorageFull)) // the budget is used up
	is.True(appended > 500)                            // most of the budget holds events
	is.Equal(rec.names(), []string{"storage.low", "storage.full"})
	low := rec.got[0]
	is.True(low.Bytes >= budget-budget/10 && low.Bytes < budget) // warned at 90%
	is.Equal(low.Limit, int64(budget))
	is.True(errors.Is(rec.got[1].Err, eventstore.ErrStorageFull))
	is.True(onDisk(path) <= budget) // -wal and -shm included

	// Nothing of the refused Append, nor of another one refused.
	is.Equal(countEvents(t, ctx, s), appended)
	_, err = s.Append(ctx, "fill-0", eventstore.Any, eventstore.Event{Type: "Filled", Data: bytes.Repeat([]byte("y"), 100_000)})
	is.True(errors.Is(err, eventstore.ErrStorageFull))
	is.Equal(countEvents(t, ctx, s), appended)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())

	// Purging makes room: appends succeed again, and the store says so.
	purged := int64(0)
	for i := range 8 {
		n, err := s.PurgeStream(ctx, fmt.Sprintf("fill-%d", i))
		is.NoErr(err)
		purged += n
	}
	is.Equal(rec.names(), []string{"storage.low", "storage.full", "storage.ok"})
	_, err = s.Append(ctx, "after-1", eventstore.Any, eventstore.Event{Type: "Filled", Data: bytes.Repeat([]byte("z"), 1000)})
	is.NoErr(err)

	before := onDisk(path)
	freed, err := s.ReclaimSpace(ctx)
	is.NoErr(err)
	is.True(freed > 0)
	is.True(onDisk(path) < before/2) // 80% of the events were purged

	// The budget holds after the file shrank, and the room is there again.
	more, err := fill(ctx, s, "more", 10, 1000)
	is.True(errors.Is(err, eventstore.ErrStorageFull))
	is.True(more >= int(purged)*8/10) // new streams' index entries take some
	is.True(onDisk(path) <= budget)
	is.Equal(rec.names(), []string{"storage.low", "storage.full", "storage.ok", "storage.low", "storage.full"})
}

// TestBudget_Options refuses budgets too small to hold anything, and a
// warning threshold above the budget or without one.
func TestBudget_Options(t *testing.T) {
	t.Parallel()
	for _, o := range []sqlite.Options{
		{MaxBytes: 1000},
		{MaxBytes: -1},
		{MaxBytes: 2 << 20, WarnBytes: 3 << 20},
		{MaxBytes: 2 << 20, WarnBytes: -1},
		{WarnBytes: 1 << 20},
	} {
		_, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), &o)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%+v: %v, want ErrInvalidArgument", o, err)
		}
	}
}

// TestBudget_Transact: an Append refused for want of room inside a
// Transact function leaves the transaction whole: what the function wrote
// before and after it commits together, or nothing does.
func TestBudget_Transact(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), &sqlite.Options{MaxBytes: 1 << 20})
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	is.NoErr(s.Transact(ctx, func(ctx context.Context) error {
		_, err := sqlite.Tx(ctx).ExecContext(ctx, `CREATE TABLE app (x INTEGER)`)
		return err
	}))
	_, err = fill(ctx, s, "fill", 3, 1000)
	is.True(errors.Is(err, eventstore.ErrStorageFull))
	before := countEvents(t, ctx, s)

	err = s.Transact(ctx, func(ctx context.Context) error {
		if _, err := sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO app VALUES (1)`); err != nil {
			return err
		}
		_, err := s.Append(ctx, "big-1", eventstore.Any, eventstore.Event{Type: "Big", Data: make([]byte, 100_000)})
		is.True(errors.Is(err, eventstore.ErrStorageFull))
		// The function goes on without the event.
		if _, err := sqlite.Tx(ctx).ExecContext(ctx, `INSERT INTO app VALUES (2)`); err != nil {
			return err
		}
		return nil
	})
	var rows int
	is.NoErr(b.Read(ctx, func(q *sqlx.Tx) error {
		return sqlx.GetContext(ctx, q, &rows, `SELECT count(*) FROM app`)
	}))
	if err == nil {
		is.Equal(rows, 2)
	} else {
		is.True(errors.Is(err, eventstore.ErrStorageFull))
		is.Equal(rows, 0)
	}
	is.Equal(countEvents(t, ctx, s), before)
}

// TestReclaimSpace purges 90% of a store's events: ReclaimSpace gives at
// least 80% of the file back to the file system, and the store reads and
// verifies as before. On a file of an earlier release, without
// auto_vacuum, it gives nothing back, and says so by returning 0.
func TestReclaimSpace(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	for _, old := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "events.db")
		if old {
			db, err := sqlx.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
			is.NoErr(err)
			_, err = db.Exec(`CREATE TABLE app (x)`)
			is.NoErr(err)
			is.NoErr(db.Close())
		}
		b, err := sqlite.Open(path, nil)
		is.NoErr(err)
		s := eventstore.New(b, nil)
		data := bytes.Repeat([]byte("x"), 500)
		for i := range 200 {
			events := make([]eventstore.Event, 50)
			for j := range events {
				events[j] = eventstore.Event{Type: "E", Data: data}
			}
			_, err := s.Append(ctx, fmt.Sprintf("s-%d", i%20), eventstore.Any, events...)
			is.NoErr(err)
		}
		checkpoint(t, path)
		full := fileSize(t, path)
		for i := range 18 {
			_, err := s.PurgeStream(ctx, fmt.Sprintf("s-%d", i))
			is.NoErr(err)
		}
		freed, err := s.ReclaimSpace(ctx)
		is.NoErr(err)
		if old {
			is.Equal(freed, int64(0))
		} else {
			checkpoint(t, path)
			t.Logf("%d of %d bytes given back (ReclaimSpace: %d)", full-fileSize(t, path), full, freed)
			is.True(fileSize(t, path) <= full/5)
		}
		is.Equal(countEvents(t, ctx, s), 1000)
		r, err := s.Verify(ctx)
		is.NoErr(err)
		is.True(r.OK())
		is.NoErr(s.Close())
	}
}

// checkpoint copies the WAL of the store at path into its file.
func checkpoint(t *testing.T, path string) {
	t.Helper()
	db, err := sqlx.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestFileStats_Space: FileStats tells the room removed events left in
// the file, which ReclaimSpace gives back, and whether the file can give
// it back.
func TestFileStats_Space(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b := open(t, nil)
	s := eventstore.New(b, nil)
	defer s.Close()
	_, err := s.Append(ctx, "big-1", eventstore.Any, eventstore.Event{Type: "Big", Data: make([]byte, 200_000)})
	is.NoErr(err)
	_, err = s.PurgeStream(ctx, "big-1")
	is.NoErr(err)
	st, err := b.FileStats(ctx)
	is.NoErr(err)
	is.True(st.IncrementalVacuum)
	is.True(st.FreeBytes >= 190_000)
	freed, err := s.ReclaimSpace(ctx)
	is.NoErr(err)
	is.Equal(freed, st.FreeBytes)
	st, err = b.FileStats(ctx)
	is.NoErr(err)
	is.Equal(st.FreeBytes, int64(0))
}

// TestBudget_Prune fills a store to its budget, then prunes it: a store at
// its budget can always prune, and appends succeed again after.
func TestBudget_Prune(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"), &sqlite.Options{MaxBytes: 2 << 20})
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	// Many streams, so that the prune records many of them.
	appended, err := fill(ctx, s, "fill", 500, 1000)
	is.True(errors.Is(err, eventstore.ErrStorageFull))
	is.NoErr(s.SetCategoryRetention(ctx, "fill", eventstore.Retention{MaxCount: 1}))
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(appended-500))
	_, err = fill(ctx, s, "more", 10, 1000)
	is.True(errors.Is(err, eventstore.ErrStorageFull)) // full again, after using the room
	is.True(countEvents(t, ctx, s) > appended/2)
}

// TestPrune_GivesSpaceBack prunes 90% of a store's events: the file
// shrinks by Prune alone, without a ReclaimSpace of its own.
func TestPrune_GivesSpaceBack(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	data := bytes.Repeat([]byte("x"), 500)
	for i := range 200 {
		events := make([]eventstore.Event, 50)
		for j := range events {
			events[j] = eventstore.Event{Type: "E", Data: data}
		}
		_, err := s.Append(ctx, fmt.Sprintf("s-%d", i%20), eventstore.Any, events...)
		is.NoErr(err)
	}
	checkpoint(t, path)
	full := fileSize(t, path)
	is.NoErr(s.SetCategoryRetention(ctx, "s", eventstore.Retention{MaxCount: 50}))
	res, err := s.Prune(ctx, eventstore.PruneOptions{})
	is.NoErr(err)
	is.Equal(res.Events, int64(9000))
	checkpoint(t, path)
	t.Logf("%d of %d bytes given back (PruneResult.Reclaimed: %d)", full-fileSize(t, path), full, res.Reclaimed)
	is.True(res.Reclaimed > 0)
	is.True(fileSize(t, path) <= full/5)
	is.Equal(countEvents(t, ctx, s), 1000)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
}
