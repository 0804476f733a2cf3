package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/jmoiron/sqlx"
)

// The crash torture test: a child process (this test binary again) appends
// from several goroutines and prints every acknowledged append, while a
// consumer and a forwarder run; the parent kills it with SIGKILL at random
// moments, again and again, then checks that every acknowledged event is
// there, unchanged, that versions and positions are sound, that the file
// passes integrity_check, and that the consumer and the forwarder pick up
// where they were and miss nothing.

const (
	tortureEnv   = "EVENTSTORE_TORTURE_CHILD" // path of the store, in the child
	tortureSync  = "EVENTSTORE_TORTURE_SYNC"
	tortureKills = 30
	writers      = 4
)

func TestTorture(t *testing.T) {
	if path := os.Getenv(tortureEnv); path != "" {
		tortureChild(path, sqlite.Synchronous(os.Getenv(tortureSync)))
		return
	}
	for _, mode := range []sqlite.Synchronous{sqlite.SyncNormal, sqlite.SyncFull} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			tortureParent(t, mode)
		})
	}
}

// ack is one acknowledged append, as the child reported it.
type ack struct {
	pid, writer, seq, n int
	stream              string
	version, position   int64
}

func (a ack) data(i int) string {
	return fmt.Sprintf(`{"pid":%d,"w":%d,"s":%d,"i":%d}`, a.pid, a.writer, a.seq, i)
}

func tortureParent(t *testing.T, mode sqlite.Synchronous) {
	dir := t.TempDir()
	path := filepath.Join(dir, "torture.db")
	var acks []ack
	kills := 0
	deadline := time.Now().Add(60 * time.Second) // bounded, whatever the machine
	for kills < tortureKills && time.Now().Before(deadline) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTorture$")
		cmd.Env = append(os.Environ(), tortureEnv+"="+path, tortureSync+"="+string(mode))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var got []ack
		done, opened := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "OPEN" {
					close(opened)
					continue
				}
				var a ack
				// A line cut by the kill does not parse, and does not count.
				if n, _ := fmt.Sscanf(sc.Text(), "ACK %d %d %d %d %s %d %d", &a.pid, &a.writer, &a.seq, &a.n, &a.stream, &a.version, &a.position); n == 7 {
					got = append(got, a)
				}
			}
		}()
		// Most kills come while the child appends: at a random moment
		// after it has opened the store, however long opening took (a
		// build with -race on a busy machine starts slowly). Every fifth
		// may come at any moment, opening (and recovering) included.
		if kills%5 != 4 {
			select {
			case <-opened:
			case <-done:
			case <-time.After(30 * time.Second): // a hang, not a speed bound
				t.Fatal("the child did not open the store")
			}
		}
		time.Sleep(time.Duration(30+rand.IntN(120)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		cmd.Wait()
		<-done
		acks = append(acks, got...)
		kills++
	}
	if kills < tortureKills {
		t.Logf("only %d kills within the time bound", kills)
	}
	if len(acks) == 0 {
		t.Fatal("no append was acknowledged")
	}
	t.Logf("%s: %d kills survived, %d acknowledged appends", mode, kills, len(acks))
	checkTortured(t, path, acks)
}

func checkTortured(t *testing.T, path string, acks []ack) {
	ctx := context.Background()
	raw, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var integrity string
	if err := raw.Get(&integrity, "PRAGMA integrity_check"); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q %v", integrity, err)
	}
	raw.Close()

	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(b, nil)
	defer store.Close()

	// Every acknowledged event is there, at its version and position,
	// with its data.
	for _, a := range acks {
		first := a.version - int64(a.n) + 1
		i := 0
		for e, err := range store.ReadStream(ctx, a.stream, eventstore.ReadOptions{From: first, Limit: a.n}) {
			if err != nil {
				t.Fatalf("ack %+v: %v", a, err)
			}
			if string(e.Data) != a.data(i) || e.Version != first+int64(i) {
				t.Fatalf("ack %+v: event %d is %s@%d %s", a, i, e.StreamID, e.Version, e.Data)
			}
			if i == a.n-1 && e.Position != a.position {
				t.Fatalf("ack %+v: last position %d", a, e.Position)
			}
			i++
		}
		if i != a.n {
			t.Fatalf("ack %+v: %d of %d events found", a, i, a.n)
		}
	}
	// Versions contiguous per stream, positions strictly increasing.
	var last int64
	next := map[string]int64{}
	total := 0
	for e, err := range store.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position <= last || e.Version != next[e.StreamID] {
			t.Fatalf("%s@%d at position %d after %d (want version %d)", e.StreamID, e.Version, e.Position, last, next[e.StreamID])
		}
		last, next[e.StreamID] = e.Position, e.Version+1
		total++
	}

	// The consumer and the forwarder resume from their checkpoints and
	// finish: the consumer's table holds every event once, the sink got
	// every event.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go consumeTortured(ctx, store)
	sink := &fileSink{path: filepath.Join(filepath.Dir(path), "sink.log")}
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	go fwd.Run(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for {
		infos, err := store.Consumers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) == 2 && infos[0].Lag == 0 && infos[1].Lag == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer and forwarder did not catch up: %+v", infos)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	var seen int
	app, err := sqlx.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if err := app.Get(&seen, `SELECT count(*) FROM seen`); err != nil {
		t.Fatal(err)
	}
	if seen != total {
		t.Fatalf("the consumer's table has %d rows for %d events", seen, total)
	}
	if delivered := sink.positions(t); len(delivered) != total {
		t.Fatalf("the sink has %d distinct events of %d", len(delivered), total)
	}
	t.Logf("%d events verified; consumer exactly once, forwarder complete", total)
}

// consumeTortured runs the exactly-once consumer: a row per event, with
// the position as primary key, so a second handling of an event would
// fail.
func consumeTortured(ctx context.Context, store *eventstore.Store) error {
	return store.Consume(ctx, eventstore.ConsumerOptions{
		Name: "projection",
		TxHandler: func(ctx context.Context, e eventstore.RecordedEvent) error {
			tx := sqlite.Tx(ctx)
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS seen (position INTEGER PRIMARY KEY)`); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO seen VALUES (?)`, e.Position)
			return err
		},
	})
}

// fileSink appends each event's position to a file: a sink whose
// deliveries survive the process being killed.
type fileSink struct {
	mu   sync.Mutex
	path string
}

func (s *fileSink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var sb strings.Builder
	for _, e := range events {
		fmt.Fprintf(&sb, "%d\n", e.Position)
	}
	_, err = f.WriteString(sb.String())
	return len(events), err
}

// positions returns the distinct positions the sink received.
func (s *fileSink) positions(t *testing.T) map[int64]bool {
	data, err := os.ReadFile(s.path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]bool{}
	for _, line := range strings.Fields(string(data)) {
		var p int64
		if _, err := fmt.Sscanf(line, "%d", &p); err == nil {
			out[p] = true
		}
	}
	return out
}

// tortureChild appends until it is killed, printing each acknowledgement,
// with the consumer and the forwarder running beside it.
func tortureChild(path string, mode sqlite.Synchronous) {
	b, err := sqlite.Open(path, &sqlite.Options{Synchronous: mode})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	store := eventstore.New(b, nil)
	fmt.Fprintln(os.Stdout, "OPEN")
	ctx := context.Background()
	go consumeTortured(ctx, store)
	if fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: &fileSink{path: filepath.Join(filepath.Dir(path), "sink.log")}, BatchSize: 7}); err == nil {
		go fwd.Run(ctx)
	}
	var out sync.Mutex
	pid := os.Getpid()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				a := ack{pid: pid, writer: w, seq: seq, n: 1 + seq%3, stream: fmt.Sprintf("tort-%d-%d", w, seq%5)}
				events := make([]eventstore.Event, a.n)
				for i := range events {
					events[i] = eventstore.Event{Type: "Tortured", Data: []byte(a.data(i))}
				}
				res, err := store.Append(ctx, a.stream, eventstore.Any, events...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				a.version, a.position = res.Version, res.Position
				out.Lock()
				fmt.Fprintf(os.Stdout, "ACK %d %d %d %d %s %d %d\n", a.pid, a.writer, a.seq, a.n, a.stream, a.version, a.position)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}
