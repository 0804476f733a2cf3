package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// benchFile returns the path of a new store file; with autoVacuum false,
// the file is made first without auto_vacuum, as releases before
// incremental vacuum made them.
func benchFile(b *testing.B, autoVacuum bool) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.db")
	if !autoVacuum {
		db, err := sqlx.Open("sqlite", dsn(path, "_pragma=auto_vacuum(NONE)", "_pragma=journal_mode(WAL)"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(`CREATE TABLE app (x)`); err != nil {
			b.Fatal(err)
		}
		db.Close()
	}
	return path
}

// BenchmarkWALFrames counts the WAL frames (pages written) per append to
// existing streams, with and without auto_vacuum=INCREMENTAL, which keeps
// pointer-map pages to move pages when the file shrinks.
//
//	go test -run '^$' -bench WALFrames -benchtime 2000x ./sqlite
func BenchmarkWALFrames(b *testing.B) {
	for _, av := range []bool{false, true} {
		for _, size := range []int{1, 100} {
			b.Run(fmt.Sprintf("incremental=%v/events=%d", av, size), func(b *testing.B) {
				path := benchFile(b, av)
				be, err := Open(path, nil)
				if err != nil {
					b.Fatal(err)
				}
				// The WAL grows by every frame written: no checkpoint
				// starts it again, the checkpointer's or the writer's.
				hold := func(ctx context.Context) { <-ctx.Done() }
				be.ckpt.hold.Store(&hold)
				s := eventstore.New(be, nil)
				defer s.Close()
				ctx := context.Background()
				for i := range benchStreams { // the streams exist: appends go to their ends
					if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i), eventstore.Any, benchEvents(10)...); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := be.writer.Exec(`PRAGMA wal_autocheckpoint = 0`); err != nil {
					b.Fatal(err)
				}
				if _, err := be.writer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
					b.Fatal(err)
				}
				events := benchEvents(size)
				i := 0
				for b.Loop() {
					if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, events...); err != nil {
						b.Fatal(err)
					}
					i++
				}
				frames := float64(fileSize(path+"-wal")-32) / float64(be.space.pageSize+24)
				b.ReportMetric(frames/float64(b.N), "frames/append")
			})
		}
	}
}

// BenchmarkReclaimSpace fills a store with 100,000 events over 1,000
// streams, purges 900 of the streams (90,000 events), and gives the room
// back with ReclaimSpace while one writer appends: it reports the file's
// size before and after, the share given back, and the appends' latency
// meanwhile.
//
//	go test -run '^$' -bench ReclaimSpace -benchtime 1x ./sqlite
func BenchmarkReclaimSpace(b *testing.B) {
	for b.Loop() {
		path := benchFile(b, true)
		be, err := Open(path, nil)
		if err != nil {
			b.Fatal(err)
		}
		s := eventstore.New(be, nil)
		ctx := context.Background()
		for i := range 1000 {
			if _, err := s.Append(ctx, fmt.Sprintf("bench-%d", i%benchStreams), eventstore.Any, benchEvents(100)...); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := be.writer.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		full := fileSize(path)
		for i := range 900 {
			if _, err := s.PurgeStream(ctx, fmt.Sprintf("bench-%d", i)); err != nil {
				b.Fatal(err)
			}
		}
		stop := make(chan struct{})
		latencies := make(chan []time.Duration)
		go func() {
			var got []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					latencies <- got
					return
				default:
				}
				start := time.Now()
				if _, err := s.Append(ctx, fmt.Sprintf("live-%d", i%10), eventstore.Any, benchEvents(1)...); err != nil {
					panic(err)
				}
				got = append(got, time.Since(start))
			}
		}()
		start := time.Now()
		_, err = s.ReclaimSpace(ctx)
		took := time.Since(start)
		close(stop)
		got := <-latencies
		if err != nil {
			b.Fatal(err)
		}
		after := fileSize(path)
		slices.Sort(got)
		b.ReportMetric(float64(full)/(1<<20), "MiB-before")
		b.ReportMetric(float64(after)/(1<<20), "MiB-after")
		b.ReportMetric(100*float64(full-after)/float64(full), "%-given-back") // less the appends meanwhile
		b.ReportMetric(took.Seconds()*1000, "ms-reclaim")
		b.ReportMetric(float64(len(got)), "appends-meanwhile")
		if len(got) > 0 {
			b.ReportMetric(float64(got[len(got)*99/100].Microseconds()), "µs-append-p99")
			b.ReportMetric(float64(got[len(got)-1].Microseconds()), "µs-append-max")
		}
		s.Close()
		os.Remove(path)
	}
}
