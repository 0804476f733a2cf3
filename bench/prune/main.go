// Command prune measures what a prune costs the writers of a store: the
// latency of single-event Appends made all along, without a prune, during
// a prune of 1,000,000 events, and while the prune gives their space back
// at its end. From the repository's root:
//
//	go run ./bench/prune            # builds the store first, about 30 s
//	go run ./bench/prune -events 100000
//	go run ./bench/prune -profile   # where a batch's time goes, by statement
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

func main() {
	events := flag.Int("events", 1_000_000, "events to prune")
	streams := flag.Int("streams", 1000, "streams they are in")
	batch := flag.Int("batch", eventstore.DefaultPruneBatch, "PruneOptions.BatchSize")
	profile := flag.Bool("profile", false, "time the prune's statements and batches (logs every statement: slower)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "prune-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(filepath.Join(dir, "prune.db"), *events, *streams, *batch, *profile); err != nil {
		log.Fatal(err)
	}
}

// data is the workload's event: about 200 bytes of JSON, as in bench/.
var data = []byte(`{"id":"000000000000000000000000000000000000","kind":"reading","sensor":"temp-01","value":21.5,"unit":"C","note":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)

func run(path string, events, streams, batch int, profile bool) error {
	ctx := context.Background()
	var prof *statements
	var opts *sqlite.Options
	if profile {
		prof = &statements{by: map[string]*stat{}}
		opts = &sqlite.Options{LogSQL: slog.New(prof)}
	}
	b, err := sqlite.Open(path, opts)
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
	// work returns a time that splits the appends into two rows: those
	// that began before it, and those after; the zero time does not.
	type timed struct {
		at   time.Time
		took time.Duration
	}
	row := func(what string, took time.Duration, got []timed, note string) {
		if len(got) == 0 {
			fmt.Printf("| %s | %v | 0 | | | | %s |\n", what, took.Round(time.Millisecond), note)
			return
		}
		ds := make([]time.Duration, len(got))
		for i, t := range got {
			ds[i] = t.took
		}
		slices.Sort(ds)
		pct := func(p int) string { return fmt.Sprintf("%.0f µs", float64(ds[len(ds)*p/100].Microseconds())) }
		fmt.Printf("| %s | %v | %d | %s | %s | %.1f ms | %s |\n", what, took.Round(time.Millisecond), len(ds), pct(50), pct(99),
			float64(ds[len(ds)-1].Microseconds())/1000, note)
	}
	measure := func(what, after string, work func() (string, time.Time, error)) error {
		stop := make(chan struct{})
		done := make(chan []timed)
		go func() {
			var got []timed
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
				got = append(got, timed{t0, time.Since(t0)})
			}
		}()
		t0 := time.Now()
		note, split, err := work()
		end := time.Now()
		close(stop)
		got := <-done
		if err != nil {
			return err
		}
		if split.IsZero() {
			row(what, end.Sub(t0), got, note)
			return nil
		}
		i, _ := slices.BinarySearchFunc(got, split, func(t timed, at time.Time) int { return t.at.Compare(at) })
		row(what, split.Sub(t0), got[:i], note)
		row(after, end.Sub(split), got[i:], "")
		return nil
	}
	fmt.Println("\n| phase | took | appends | p50 | p99 | max | |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |")
	if err := measure("no prune (baseline)", "", func() (string, time.Time, error) {
		time.Sleep(5 * time.Second)
		return "", time.Time{}, nil
	}); err != nil {
		return err
	}
	if err := s.SetCategoryRetention(ctx, "old", eventstore.Retention{MaxCount: 1}); err != nil {
		return err
	}
	// Prune gives the space back at its end: the appends during that are
	// a row of their own.
	var batches []time.Duration
	before := fileSize(path)
	if err := measure(fmt.Sprintf("Prune, batches of %d", batch), "Prune, giving the space back", func() (string, time.Time, error) {
		prof.start()
		last := time.Now()
		res, err := s.Prune(ctx, eventstore.PruneOptions{BatchSize: batch, Progress: func(eventstore.PruneResult) {
			batches = append(batches, time.Since(last))
			last = time.Now()
		}})
		prof.stop()
		return fmt.Sprintf("%d events removed, %.0f/s; then %.0f MiB given back, file %.0f -> %.0f MiB", res.Events,
			float64(res.Events)/(res.Duration-time.Since(last)).Seconds(),
			float64(res.Reclaimed)/(1<<20), float64(before)/(1<<20), float64(fileSize(path))/(1<<20)), last, err
	}); err != nil {
		return err
	}
	if prof != nil {
		prof.print(batches)
	}
	return nil
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// statements is a slog.Handler for sqlite.Options.LogSQL that adds up the
// time of each statement while on.
type statements struct {
	mu sync.Mutex
	on bool
	by map[string]*stat
}

type stat struct {
	n          int
	total, max time.Duration
}

func (p *statements) start() {
	if p != nil {
		p.mu.Lock()
		p.on = true
		p.mu.Unlock()
	}
}

func (p *statements) stop() {
	if p != nil {
		p.mu.Lock()
		p.on = false
		p.mu.Unlock()
	}
}

func (p *statements) Enabled(context.Context, slog.Level) bool { return true }
func (p *statements) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *statements) WithGroup(string) slog.Handler            { return p }

func (p *statements) Handle(_ context.Context, r slog.Record) error {
	var query string
	var elapsed time.Duration
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "sql":
			query = a.Value.String()
		case "elapsed":
			elapsed = a.Value.Duration()
		}
		return true
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return nil
	}
	st := p.by[query]
	if st == nil {
		st = &stat{}
		p.by[query] = st
	}
	st.n++
	st.total += elapsed
	st.max = max(st.max, elapsed)
	return nil
}

// print shows the statements by total time, and the batches' times
// (from one Progress call to the next: the write transaction, its commit,
// and the wait for the writer).
func (p *statements) print(batches []time.Duration) {
	slices.Sort(batches)
	if n := len(batches); n > 0 {
		fmt.Printf("\n%d batches: p50 %v, p99 %v, max %v\n", n, batches[n/2], batches[n*99/100], batches[n-1])
	}
	type row struct {
		query string
		*stat
	}
	var rows []row
	for q, st := range p.by {
		rows = append(rows, row{q, st})
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.total - a.total) })
	fmt.Println("\n| statement | runs | total | mean | max |\n| --- | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		q := r.query
		if len(q) > 90 {
			q = q[:90] + "…"
		}
		fmt.Printf("| `%s` | %d | %v | %v | %v |\n", strings.ReplaceAll(q, "|", "\\|"), r.n, r.total.Round(time.Millisecond),
			(r.total / time.Duration(r.n)).Round(time.Microsecond), r.max.Round(time.Microsecond))
	}
	fmt.Println()
}
