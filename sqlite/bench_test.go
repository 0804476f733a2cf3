package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// The workload: events of about 200 bytes of JSON data, spread over 1,000
// streams, each Append with expected version Any. The Raw benchmarks do the
// same inserts (same schema, same columns, same indexes) straight through
// database/sql on the writer connection, so their ratio is the library's
// own overhead.

const benchStreams = 1000

var benchData = []byte(`{"id":"` + strings.Repeat("0", 36) + `","kind":"reading","sensor":"temp-01","value":21.5,"unit":"C","note":"` + strings.Repeat("x", 90) + `"}`)

func benchStore(b *testing.B, opts *Options) (*eventstore.Store, *Backend) {
	b.Helper()
	be, err := Open(filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	s := eventstore.New(be, nil)
	b.Cleanup(func() { s.Close() })
	return s, be
}

func benchEvents(n int) []eventstore.Event {
	events := make([]eventstore.Event, n)
	for i := range events {
		events[i] = eventstore.Event{Type: "Reading", Data: benchData}
	}
	return events
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 100} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			s, _ := benchStore(b, nil)
			ctx := context.Background()
			events := benchEvents(size)
			i := 0
			for b.Loop() {
				if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkCancellable is BenchmarkAppend's single-event append
// with a context that can be cancelled, as a request's is: the write
// transaction then watches it until BEGIN has taken the lock.
func BenchmarkCancellable(b *testing.B) {
	s, _ := benchStore(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := benchEvents(1)
	i := 0
	for b.Loop() {
		if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawInsert is the baseline of BenchmarkAppend (and, with
// sync=FULL, of BenchmarkAppendConcurrent under FULL): the same rows in one
// transaction per batch, with a prepared statement, into streams that
// exist, as the store writes them.
func BenchmarkRawInsert(b *testing.B) {
	for _, c := range []struct {
		size int
		sync Synchronous
	}{{1, SyncNormal}, {100, SyncNormal}, {1, SyncFull}} {
		b.Run(fmt.Sprintf("events=%d/sync=%s", c.size, c.sync), func(b *testing.B) {
			size := c.size
			s, be := benchStore(b, &Options{Synchronous: c.sync})
			ctx := context.Background()
			version := make([]int64, benchStreams)
			for i := range version { // the streams, with their keys and category
				if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i), eventstore.Any, benchEvents(1)...); err != nil {
					b.Fatal(err)
				}
				version[i] = 1
			}
			at := time.Now().UnixNano()
			i := 0
			for b.Loop() {
				stream := fmt.Sprintf("bench-%d", i%benchStreams)
				tx, err := be.writer.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				st := tx.StmtContext(ctx, be.insertEvent.Stmt)
				for range size {
					id := uuid.Must(uuid.NewV7())
					v := version[i%benchStreams]
					version[i%benchStreams]++
					sum := int64(checksum(stream, v, "Reading", benchData, nil))
					if _, err := st.ExecContext(ctx, id[:], i%benchStreams+1, 0, v, 1, "Reading", benchData, nil, at, sum, stream); err != nil {
						b.Fatal(err)
					}
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// fillBench writes n events over benchStreams streams, 100 per Append.
func fillBench(b *testing.B, s *eventstore.Store, n int) {
	b.Helper()
	events := benchEvents(100)
	for i := 0; i < n/100; i++ {
		if _, err := s.Append(context.Background(), fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
			b.Fatal(err)
		}
	}
}

const benchScan = 100_000

func BenchmarkReadAll(b *testing.B) {
	s, _ := benchStore(b, nil)
	fillBench(b, s, benchScan)
	ctx := context.Background()
	for b.Loop() {
		n := 0
		for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != benchScan {
			b.Fatalf("read %d events", n)
		}
	}
	b.ReportMetric(float64(b.N*benchScan)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkRawScan is the baseline of BenchmarkReadAll: one SELECT of
// every column in position order, scanned into Go values.
func BenchmarkRawScan(b *testing.B) {
	s, be := benchStore(b, nil)
	fillBench(b, s, benchScan)
	for b.Loop() {
		rows, err := be.reader.Query(`SELECT position, id, (SELECT id FROM streams WHERE sk = stream), life, version, type, data, metadata, recorded_at FROM events ORDER BY position`)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var e eventstore.RecordedEvent
			var id []byte
			var life, at int64
			if err := rows.Scan(&e.Position, &id, &e.StreamID, &life, &e.Version, &e.Type, &e.Data, &e.Metadata, &at); err != nil {
				b.Fatal(err)
			}
			e.ID = uuid.UUID(id)
			e.RecordedAt = time.Unix(0, at).UTC()
			n++
		}
		if err := rows.Close(); err != nil || n != benchScan {
			b.Fatal(err, n)
		}
	}
	b.ReportMetric(float64(b.N*benchScan)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReadStream(b *testing.B) {
	s, _ := benchStore(b, nil)
	ctx := context.Background()
	events := benchEvents(100)
	for range 10 {
		if _, err := s.Append(ctx, "long-1", eventstore.Any, events...); err != nil {
			b.Fatal(err)
		}
	}
	fillBench(b, s, 10_000)
	for b.Loop() {
		n := 0
		for _, err := range s.ReadStream(ctx, "long-1", eventstore.ReadOptions{}) {
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 1000 {
			b.Fatalf("read %d", n)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkSubscribeLatency measures how long a live subscriber waits for
// an event appended by one writer, under synchronous NORMAL: "append" from
// the start of the Append (its commit included), "commit" from the moment
// the commit was reported to the Store (just after it committed: the
// hand-over to the subscription and the channel send), "delivery" from the
// moment the Append returned.
func BenchmarkSubscribeLatency(b *testing.B) {
	for _, from := range []string{"append", "commit", "delivery"} {
		b.Run(from, func(b *testing.B) {
			s, be := benchStore(b, nil)
			ctx := context.Background()
			sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{From: eventstore.FromNow})
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Close()
			<-sub.CaughtUp()
			base := time.Now()
			var committed atomic.Int64 // since base, at the last report
			if from == "commit" {
				deliver := be.report.Load() // the Store's, set by Subscribe
				if deliver == nil {
					b.Fatal("the store did not ask for reports")
				}
				timed := func(c eventstore.Commit) {
					committed.Store(int64(time.Since(base)))
					(*deliver)(c)
				}
				be.report.Store(&timed)
			}
			events := benchEvents(1)
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Since(base)
				if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
					b.Fatal(err)
				}
				switch from {
				case "commit":
					start = time.Duration(committed.Load())
				case "delivery":
					start = time.Since(base)
				}
				<-sub.Events()
				lat = append(lat, max(time.Since(base)-start, 0))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds())/1e3, "p99.9-µs")
		})
	}
}

// BenchmarkSubscribeCatchUp measures a subscription from the start of a
// 100,000-event log.
func BenchmarkSubscribeCatchUp(b *testing.B) {
	s, _ := benchStore(b, nil)
	fillBench(b, s, benchScan)
	ctx := context.Background()
	for b.Loop() {
		sub, err := s.Subscribe(ctx, eventstore.SubscribeOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for range benchScan {
			<-sub.Events()
		}
		sub.Close()
	}
	b.ReportMetric(float64(b.N*benchScan)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkConsume measures a durable consumer catching up on 10,000
// events, saving its checkpoint after every event or every 100.
func BenchmarkConsume(b *testing.B) {
	const n = 10_000
	for _, every := range []int{1, 100} {
		b.Run(fmt.Sprintf("checkpoint-every=%d", every), func(b *testing.B) {
			s, _ := benchStore(b, nil)
			fillBench(b, s, n)
			run := 0
			for b.Loop() {
				run++
				ctx, cancel := context.WithCancel(context.Background())
				err := s.Consume(ctx, eventstore.ConsumerOptions{
					Name:            fmt.Sprintf("bench-%d", run),
					CheckpointEvery: every,
					Handler: func(_ context.Context, e eventstore.RecordedEvent) error {
						if e.Position == n {
							cancel()
						}
						return nil
					},
				})
				cancel()
				if !errors.Is(err, context.Canceled) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkAppendConcurrent runs 64 goroutines appending one event each,
// to different streams: group commit lets them share transactions. Beside
// the rate it reports each Append's latency, p99 and worst: an append's
// latency is its own group's commit, not the groups queued after it.
func BenchmarkAppendConcurrent(b *testing.B) {
	for _, mode := range []Synchronous{SyncNormal, SyncFull} {
		b.Run(fmt.Sprintf("sync=%s", mode), func(b *testing.B) {
			s, _ := benchStore(b, &Options{Synchronous: mode})
			events := benchEvents(1)
			var next atomic.Int64
			latencies := make([]time.Duration, b.N+64)
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := next.Add(1)
					start := time.Now()
					if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
						b.Error(err)
						return
					}
					latencies[i-1] = time.Since(start)
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			lat := latencies[:b.N]
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
		})
	}
}

// BenchmarkAppendLatency runs single-event appends one after another, as
// BenchmarkAppend, with no storage budget and with two (64 MiB: the WAL's
// full share; 4 MiB: a WAL share of 119 frames), and reports each
// Append's latency, p99 and p99.9: the checkpoints are in its tail.
func BenchmarkAppendLatency(b *testing.B) {
	for _, mib := range []int64{0, 64, 4} {
		b.Run(fmt.Sprintf("budget=%dMiB", mib), func(b *testing.B) {
			s, _ := benchStore(b, &Options{MaxBytes: mib << 20})
			ctx := context.Background()
			events := benchEvents(1)
			var lat []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds())/1e3, "p99.9-µs")
		})
	}
}

// BenchmarkMigrate migrates a store file of schema version 6 (the
// release before storage v2) with 1,000,000 events of about 110 bytes of
// JSON over 1,000 streams, built once with the old schema's SQL from
// testdata/v6.db, and reports the events migrated per second. Each round
// migrates a fresh copy; the copy is not timed.
func BenchmarkMigrate(b *testing.B) {
	const events = 1_000_000
	dir := b.TempDir()
	orig := filepath.Join(dir, "v6.db")
	src, err := os.ReadFile(filepath.Join("testdata", "v6.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(orig, src, 0o600); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", orig)
	if err != nil {
		b.Fatal(err)
	}
	var before int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&before); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < 1000000)
		INSERT INTO events (id, stream_id, life, version, category, type, data, recorded_at)
		SELECT randomblob(16), 'load-' || (i % 1000), 0, i / 1000, 'load', 'Reading',
			'{"id":"0190f5a2-7c1e-7b3a-9d4e-2f6a8b1c3d5e","kind":"reading","seq":' || i || ',"value":21.5,"unit":"C"}',
			1764000000000000000 + i
		FROM n`,
		`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
		INSERT INTO streams (id, category, life, version, created_at, updated_at)
		SELECT 'load-' || i, 'load', 0, 999, 1, 1 FROM n`,
	} {
		if _, err := db.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(dir, "copy.db")
		data, err := os.ReadFile(orig)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		be, err := Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := be.Close(); err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		b.StartTimer()
	}
	b.ReportMetric(float64(b.N*(events+before))/b.Elapsed().Seconds(), "events/s")
}
