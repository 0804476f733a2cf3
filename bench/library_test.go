package bench

import (
	"context"
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
