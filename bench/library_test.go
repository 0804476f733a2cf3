package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

func store(b *testing.B, sync sqlite.Synchronous) *eventstore.Store {
	b.Helper()
	be, err := sqlite.Open(filepath.Join(b.TempDir(), "lib.db"), &sqlite.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(be, nil)
	b.Cleanup(func() { s.Close() })
	return s
}

func events(n int) []eventstore.Event {
	out := make([]eventstore.Event, n)
	for i := range out {
		out[i] = eventstore.Event{Type: "Reading", Data: data}
	}
	return out
}

// BenchmarkLibrary runs eventstore on SQLite through the same workload as
// the raw baselines: Append of 1 and of 100 events, 64 concurrent
// appenders (group commit), a ReadAll scan and a 1,000-event ReadStream.
func BenchmarkLibrary(b *testing.B) {
	ctx := context.Background()
	for _, rows := range []int{1, 100} {
		b.Run(map[int]string{1: "append1", 100: "append100"}[rows], func(b *testing.B) {
			s := store(b, sqlite.SyncNormal)
			evs := events(rows)
			i := 0
			for b.Loop() {
				if _, err := s.Append(ctx, stream(i), eventstore.Any, evs...); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "events/s")
		})
	}
	for _, sync := range []sqlite.Synchronous{sqlite.SyncNormal, sqlite.SyncFull} {
		b.Run("concurrent64-"+string(sync), func(b *testing.B) {
			s := store(b, sync)
			evs := events(1)
			var next atomic.Int64
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Append(ctx, stream(int(next.Add(1))), eventstore.Any, evs...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("scan", func(b *testing.B) {
		s := store(b, sqlite.SyncNormal)
		evs := events(100)
		for i := range scanSize / 100 {
			if _, err := s.Append(ctx, stream(i), eventstore.Any, evs...); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			n := 0
			for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != scanSize {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N*scanSize)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkRawFull is the one-row transaction of the modernc baseline
// under synchronous FULL, the baseline of concurrent64-FULL.
func BenchmarkRawFull(b *testing.B) {
	db := sqlDB(b, "sqlite")
	if _, err := db.Exec("PRAGMA synchronous = FULL"); err != nil {
		b.Fatal(err)
	}
	versions := make([]int64, streams)
	i := 0
	for b.Loop() {
		sqlInsert(b, db, 1, versions, i)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// walData is the event of the WAL benchmark: about 110 bytes of JSON, the
// size the storage targets are stated for.
var walData = []byte(`{"id":"0190f5a2-7c1e-7b3a-9d4e-2f6a8b1c3d5e","kind":"reading","sensor":"temp-01","value":21.5,"unit":"C"}`)

// BenchmarkWAL counts what an Append writes: WAL frames (pages of 4 KiB)
// and bytes of WAL per event, for appends of 1 and of 100 events to
// existing streams, and the frames of each b-tree, read from the frame
// headers: the events table, the event IDs' table (event_ids; the ID
// index before schema version 9), the per-stream and category indexes,
// page 1, and the rest (the pointer maps of a file with auto_vacuum). A
// read transaction held open on another connection keeps the WAL from
// being reset by checkpoints, so its size grows by every frame written.
// The _autovacuum variants create the file with PRAGMA auto_vacuum =
// INCREMENTAL, as Open creates new files; the others with auto_vacuum =
// NONE, as files of releases before schema version 8 have it.
func BenchmarkWAL(b *testing.B) {
	ctx := context.Background()
	for _, autoVacuum := range []bool{false, true} {
		for _, rows := range []int{1, 100} {
			name := map[int]string{1: "append1", 100: "append100"}[rows]
			if autoVacuum {
				name += "_autovacuum"
			}
			b.Run(name, func(b *testing.B) {
				benchWAL(ctx, b, rows, autoVacuum)
			})
		}
	}
}

func benchWAL(ctx context.Context, b *testing.B, rows int, autoVacuum bool) {
	path := filepath.Join(b.TempDir(), "wal.db")
	{
		// auto_vacuum is set before the file has its first table; WAL
		// mode writes the file's header, which keeps it.
		db, err := sql.Open("sqlite", path)
		if err != nil {
			b.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		mode := map[bool]string{false: "NONE", true: "INCREMENTAL"}[autoVacuum]
		for _, q := range []string{"PRAGMA auto_vacuum = " + mode, "PRAGMA journal_mode = WAL"} {
			if _, err := db.Exec(q); err != nil {
				b.Fatal(err)
			}
		}
		db.Close()
	}
	be, err := sqlite.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(be, nil)
	defer s.Close()
	evs := make([]eventstore.Event, rows)
	for i := range evs {
		evs[i] = eventstore.Event{Type: "Reading", Data: walData}
	}
	for i := range streams { // every stream exists before the count
		if _, err := s.Append(ctx, stream(i), eventstore.Any, evs[0]); err != nil {
			b.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM eventstore_schema").Scan(&n); err != nil {
		b.Fatal(err)
	}
	before := walSize(b, path)
	i := 0
	for b.Loop() {
		if _, err := s.Append(ctx, stream(i), eventstore.Any, evs...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	written := walSize(b, path) - before
	const frame = 4096 + 24
	b.ReportMetric(float64(written)/frame/float64(b.N), "frames/append")
	b.ReportMetric(float64(written)/frame/float64(b.N*rows), "frames/event")
	b.ReportMetric(float64(written)/float64(b.N*rows), "walbytes/event")
	if err := tx.Rollback(); err != nil {
		b.Fatal(err)
	}
	for tree, frames := range walFrames(b, db, path, before) {
		b.ReportMetric(float64(frames)/float64(b.N), tree+"-frames/append")
	}
}

// walFrames counts the frames of the WAL at path from offset on by the
// b-tree their page belongs to, named as BenchmarkWAL reports them.
func walFrames(b *testing.B, db *sql.DB, path string, offset int64) map[string]int {
	names := map[string]string{
		"events":                    "events",
		"sqlite_autoindex_events_1": "idindex",
		"event_ids":                 "idtable",
		"event_ids_shared":          "idshared",
		"events_stream":             "streamindex",
		"events_category":           "categoryindex",
	}
	tree := map[uint32]string{1: "page1"}
	rows, err := db.Query("SELECT name, pageno FROM dbstat")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var name string
		var page uint32
		if err := rows.Scan(&name, &page); err != nil {
			b.Fatal(err)
		}
		if page != 1 {
			tree[page] = names[name]
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		b.Fatal(err)
	}
	wal, err := os.ReadFile(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	const header, frame = 32, 4096 + 24
	out := map[string]int{}
	for at := int64(header); at+frame <= int64(len(wal)); at += frame {
		if at < offset {
			continue
		}
		name := tree[binary.BigEndian.Uint32(wal[at:])]
		if name == "" {
			name = "other"
		}
		out[name]++
	}
	return out
}

func walSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path + "-wal")
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
