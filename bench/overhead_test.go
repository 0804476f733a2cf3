package bench

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"hash/crc32"
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
// file with the library's schema (created by sqlite.Open, its streams
// started by one Append each), reading the stream's record first as an
// Append to a stream it does not know does, and storing each event's ID
// in event_ids (schema version 9), one statement per row. Compare with
// Library/append1 and Library/append100.
func BenchmarkSameSchema(b *testing.B) {
	for _, rows := range []int{1, 100} {
		b.Run(txName(rows), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "same.db")
			be, err := sqlite.Open(path, nil) // creates the schema
			if err != nil {
				b.Fatal(err)
			}
			s := eventstore.New(be, nil)
			ctx := context.Background()
			for k := range streams {
				if _, err := s.Append(ctx, stream(k), eventstore.Any, events(1)...); err != nil {
					b.Fatal(err)
				}
			}
			s.Close()
			db, err := sql.Open("sqlite", path+"?_pragma=synchronous(NORMAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			insert, err := db.PrepareContext(ctx, `INSERT INTO events (id, stream, life, version, category, type, data, metadata, recorded_at, checksum)
				VALUES (?, ?, ?, ?, ?, 'Reading', ?, NULL, ?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			insertID, err := db.PrepareContext(ctx, `INSERT INTO event_ids (k, position) VALUES (?, ?)`)
			if err != nil {
				b.Fatal(err)
			}
			versions := make([]int64, streams)
			for k := range versions {
				versions[k] = 1
			}
			i := 0
			for b.Loop() {
				k := i % streams
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				at := time.Now().UnixNano()
				var sk, life, category int64
				if err := tx.QueryRowContext(ctx, `SELECT sk, life, category FROM streams WHERE id = ?`, stream(k)).Scan(&sk, &life, &category); err != nil {
					b.Fatal(err)
				}
				st, stID := tx.StmtContext(ctx, insert), tx.StmtContext(ctx, insertID)
				for range rows {
					id := uuid.Must(uuid.NewV7())
					sum := checksum(stream(k), versions[k], "Reading", data)
					r, err := st.ExecContext(ctx, id[:], sk, life, versions[k], category, data, at, sum)
					if err != nil {
						b.Fatal(err)
					}
					position, err := r.LastInsertId()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := stID.ExecContext(ctx, int64(binary.BigEndian.Uint64(id[:8])), position); err != nil {
						b.Fatal(err)
					}
					versions[k]++
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

// checksum is the event checksum of the store's schema (schema.sql,
// migration 7), for an event without metadata.
func checksum(stream string, version int64, typ string, data []byte) int64 {
	var buf []byte
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(stream)))
	buf = append(buf, stream...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(version))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(typ)))
	buf = append(buf, typ...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(data)))
	buf = append(buf, data...)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	return int64(crc32.Checksum(buf, crc32.MakeTable(crc32.Castagnoli)))
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
