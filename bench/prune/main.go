// Command prune measures what a prune costs the writers of a store: the
// latency of single-event Appends made all along, without a prune, during
// a prune of 1,000,000 events, and while ReclaimSpace gives their space
// back. From the repository's root:
//
//	go run ./bench/prune            # builds the store first, about 30 s
//	go run ./bench/prune -events 100000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

func main() {
	events := flag.Int("events", 1_000_000, "events to prune")
	streams := flag.Int("streams", 1000, "streams they are in")
	batch := flag.Int("batch", eventstore.DefaultPruneBatch, "PruneOptions.BatchSize")
	flag.Parse()
	dir, err := os.MkdirTemp("", "prune-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(filepath.Join(dir, "prune.db"), *events, *streams, *batch); err != nil {
		log.Fatal(err)
	}
}

// data is the workload's event: about 200 bytes of JSON, as in bench/.
var data = []byte(`{"id":"000000000000000000000000000000000000","kind":"reading","sensor":"temp-01","value":21.5,"unit":"C","note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)

func run(path string, events, streams, batch int) error {
	ctx := context.Background()
	b, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	s := eventstore.New(b, nil)
	defer s.Close()

	// The store: events+streams events in streams of the category "old",
	// appended 100 at a time; a MaxCount of 1 expires all but the last of
	// each stream, so that a prune removes `events` of them.
	start := time.Now()
	perStream := events/streams + 1
	chunk := make([]eventstore.Event, 100)
	for i := range chunk {
		chunk[i] = eventstore.Event{Type: "Reading", Data: data}
	}
	for i := 0; i < streams*perStream; i += len(chunk) {
		n := min(len(chunk), streams*perStream-i)
		if _, err := s.Append(ctx, fmt.Sprintf("old-%d", (i/len(chunk))%streams), eventstore.Any, chunk[:n]...); err != nil {
			return err
		}
	}
	st, err := b.FileStats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("store: %d events in %d streams, %.0f MiB, written in %v\n", st.Events, streams, float64(fileSize(path))/(1<<20), time.Since(start).Round(time.Second))

	// One writer appends single events to streams of its own all along.
	measure := func(what string, work func() (string, error)) error {
		stop := make(chan struct{})
		done := make(chan []time.Duration)
		go func() {
			var got []time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					done <- got
					return
				default:
				}
				t0 := time.Now()
				if _, err := s.Append(ctx, fmt.Sprintf("live-%d", i%10), eventstore.Any, eventstore.Event{Type: "Reading", Data: data}); err != nil {
					log.Fatal(err)
				}
				got = append(got, time.Since(t0))
			}
		}()
		t0 := time.Now()
		note, err := work()
		took := time.Since(t0)
		close(stop)
		got := <-done
		if err != nil {
			return err
		}
		slices.Sort(got)
		pct := func(p int) string { return fmt.Sprintf("%.0f µs", float64(got[len(got)*p/100].Microseconds())) }
		fmt.Printf("| %s | %v | %d | %s | %s | %.1f ms | %s |\n", what, took.Round(time.Millisecond), len(got), pct(50), pct(99),
			float64(got[len(got)-1].Microseconds())/1000, note)
		return nil
	}
	fmt.Println("\n| phase | took | appends | p50 | p99 | max | |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |")
	if err := measure("no prune (baseline)", func() (string, error) {
		time.Sleep(5 * time.Second)
		return "", nil
	}); err != nil {
		return err
	}
	if err := s.SetCategoryRetention(ctx, "old", eventstore.Retention{MaxCount: 1}); err != nil {
		return err
	}
	if err := measure(fmt.Sprintf("Prune, batches of %d", batch), func() (string, error) {
		res, err := s.Prune(ctx, eventstore.PruneOptions{BatchSize: batch})
		return fmt.Sprintf("%d events removed, %.0f/s", res.Events, float64(res.Events)/res.Duration.Seconds()), err
	}); err != nil {
		return err
	}
	before := fileSize(path)
	return measure("ReclaimSpace", func() (string, error) {
		freed, err := s.ReclaimSpace(ctx)
		return fmt.Sprintf("%.0f MiB given back, file %.0f -> %.0f MiB", float64(freed)/(1<<20), float64(before)/(1<<20), float64(fileSize(path))/(1<<20)), err
	})
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
