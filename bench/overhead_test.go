package bench

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/google/uuid"
)

// BenchmarkSameSchema is the raw baseline that shows the library's own
// overhead: the same rows written by hand, through database/sql, into a
// file with the library's schema (created by sqlite.Open), with the
// stream row upserted as an Append does. Compare with Library/append1 and
// Library/append100.
func BenchmarkSameSchema(b *testing.B) {
	for _, rows := range []int{1, 100} {
		b.Run(txName(rows), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "same.db")
			be, err := sqlite.Open(path, nil) // creates the schema
			if err != nil {
				b.Fatal(err)
			}
			be.Close()
			db, err := sql.Open("sqlite", path+"?_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			ctx := context.Background()
			insert, err := db.PrepareContext(ctx, `INSERT INTO events (id, stream_id, life, version, category, type, data, metadata, recorded_at) VALUES (?, ?, 0, ?, 'bench', 'Reading', ?, NULL, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			upsert, err := db.PrepareContext(ctx, `INSERT INTO streams (id, category, life, version, created_at, updated_at) VALUES (?, 'bench', 0, ?, ?, ?)
				ON CONFLICT (id) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`)
			if err != nil {
				b.Fatal(err)
			}
			versions := make([]int64, streams)
			i := 0
			for b.Loop() {
				k := i % streams
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				at := time.Now().UnixNano()
				var state int64
				if err := tx.QueryRowContext(ctx, `SELECT version FROM streams WHERE id = ?`, stream(k)).Scan(&state); err != nil && err != sql.ErrNoRows {
					b.Fatal(err)
				}
				st := tx.StmtContext(ctx, insert)
				for range rows {
					id := uuid.Must(uuid.NewV7())
					if _, err := st.ExecContext(ctx, id[:], stream(k), versions[k], data, at); err != nil {
						b.Fatal(err)
					}
					versions[k]++
				}
				if _, err := tx.StmtContext(ctx, upsert).ExecContext(ctx, stream(k), versions[k]-1, at, at); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchDecider is a counter aggregate over the workload's events.
var benchDecider = eventstore.Decider[int, int, int]{
	Decide: func(_ int, n int) ([]int, error) { return make([]int, n), nil },
	Evolve: func(s int, _ int) int { return s + 1 },
}

type benchCodec struct{}

func (benchCodec) Encode(int) (eventstore.Event, error) {
	return eventstore.Event{Type: "Reading", Data: data}, nil
}
func (benchCodec) Decode(e eventstore.RecordedEvent) (int, error) { return len(e.Data), nil }

// BenchmarkLibraryReads covers the library's reads: a 1,000-event stream,
// a 10,000-event aggregate by replay and from a snapshot, the latency from
// Append to a live subscriber, and the peak heap of reading a
// 1,000,000-event stream.
func BenchmarkLibraryReads(b *testing.B) {
	ctx := context.Background()
	b.Run("readstream1000", func(b *testing.B) {
		s := store(b, sqlite.SyncNormal)
		for range 10 {
			if _, err := s.Append(ctx, "long-1", eventstore.Any, events(100)...); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			n := 0
			for _, err := range s.ReadStream(ctx, "long-1", eventstore.ReadOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 1000 {
				b.Fatal(n)
			}
		}
		b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
	})
	for _, every := range []int{0, 100} {
		b.Run(fmt.Sprintf("aggregate10k-snapshot%d", every), func(b *testing.B) {
			s := store(b, sqlite.SyncNormal)
			repo := eventstore.NewRepository(s, benchDecider, benchCodec{}, &eventstore.RepositoryOptions[int]{SnapshotEvery: every})
			for range 100 {
				if _, err := repo.Execute(ctx, "agg-1", 100); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if n, _, err := repo.Load(ctx, "agg-1"); err != nil || n != 10_000 {
					b.Fatal(n, err)
				}
			}
		})
	}
	b.Run("subscriber-latency", func(b *testing.B) {
		s := store(b, sqlite.SyncNormal)
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{From: eventstore.FromNow})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Close()
		var lat []time.Duration
		i := 0
		for b.Loop() {
			t0 := time.Now()
			if _, err := s.Append(ctx, stream(i), eventstore.Any, events(1)...); err != nil {
				b.Fatal(err)
			}
			<-sub.Events()
			lat = append(lat, time.Since(t0))
			i++
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	})
	b.Run("read1M-peak-heap", func(b *testing.B) {
		s := store(b, sqlite.SyncNormal)
		batch := events(1000)
		for range 1000 {
			if _, err := s.Append(ctx, "huge-1", eventstore.Any, batch...); err != nil {
				b.Fatal(err)
			}
		}
		var peak uint64
		for b.Loop() {
			runtime.GC()
			var ms runtime.MemStats
			n := 0
			for _, err := range s.ReadStream(ctx, "huge-1", eventstore.ReadOptions{}) {
				if err != nil {
					b.Fatal(err)
				}
				if n%50_000 == 0 {
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapAlloc)
				}
				n++
			}
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	})
}
