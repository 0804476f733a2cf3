package jetstream_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/jetstream"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// runServer starts a real JetStream server in the test process, on
// 127.0.0.1. port 0 picks a free port; storeDir keeps its data across a
// restart.
func runServer(t testing.TB, port int, storeDir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// device is a store on a SQLite file with a forwarder to a sink.
type device struct {
	store *eventstore.Store
	fwd   *eventstore.Forwarder
	stop  func()
}

func newDevice(t testing.TB, sink eventstore.Sink) *device {
	t.Helper()
	b, err := sqlite.Open(filepath.Join(t.TempDir(), "device.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.New(b, nil)
	t.Cleanup(func() { store.Close() })
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink, BatchSize: 200, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return &device{store: store, fwd: fwd}
}

func (d *device) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.fwd.Run(ctx) }()
	d.stop = func() { cancel(); <-done }
}

// write appends n events spread over streams streams.
func (d *device) write(t testing.TB, streams, n int) {
	t.Helper()
	per := n / streams
	for i := range streams {
		events := make([]eventstore.Event, per)
		for j := range events {
			events[j] = eventstore.Event{Type: "Reading", Data: fmt.Appendf(nil, `{"sensor":%d,"n":%d}`, i, j), Metadata: []byte(`{"fw":"1.4"}`)}
		}
		if _, err := d.store.Append(context.Background(), fmt.Sprintf("sensor-%d", i), eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForwarded waits until the forwarder has confirmed position.
func (d *device) waitForwarded(t testing.TB, position int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for d.fwd.Status().Position < position {
		if time.Now().After(deadline) {
			t.Fatalf("forwarded up to %d of %d: %+v", d.fwd.Status().Position, position, d.fwd.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// received reads the whole JetStream stream and returns the event
// positions in stream order, checking headers and subjects on the way.
func received(t testing.TB, nc *nats.Conn, stream string) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js, err := natsjs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		pos, err := strconv.ParseInt(m.Header.Get(jetstream.HeaderPosition), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if want := "events.sensor." + m.Header.Get(jetstream.HeaderStream); m.Subject != want {
			t.Fatalf("subject %s, want %s", m.Subject, want)
		}
		if m.Header.Get(natsjs.MsgIDHeader) == "" || m.Header.Get(jetstream.HeaderType) != "Reading" ||
			m.Header.Get(jetstream.HeaderMetadata) != `{"fw":"1.4"}` || m.Header.Get(jetstream.HeaderVersion) == "" {
			t.Fatalf("headers: %v", m.Header)
		}
		out = append(out, pos)
	}
	return out
}

func inOrder(t testing.TB, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d messages, want %d", len(got), n)
	}
	for i, p := range got {
		if p != int64(i+1) {
			t.Fatalf("message %d has position %d", i, p)
		}
	}
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // outages are on purpose here
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestForward_TenThousandEvents(t *testing.T) {
	t.Parallel()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, sink)
	d.write(t, 100, 10_000)
	d.run()
	defer d.stop()
	d.waitForwarded(t, 10_000)
	inOrder(t, received(t, nc, "EVENTS"), 10_000)
}

// TestForward_ServerDownThenBack stops the server while the device keeps
// writing, then brings it back on the same port and data: everything
// arrives, in order, once.
func TestForward_ServerDownThenBack(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	dir := t.TempDir()
	srv := runServer(t, 0, dir)
	url := srv.ClientURL()
	nc := connect(t, url)
	sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}, AckTimeout: time.Second})
	is.NoErr(err)
	d := newDevice(t, sink)
	d.run()
	defer d.stop()
	d.write(t, 10, 500)
	d.waitForwarded(t, 500)

	srvPort := portOf(t, srv.Addr().String())
	srv.Shutdown()
	srv.WaitForShutdown()
	d.write(t, 10, 1000) // the device goes on writing offline
	deadline := time.Now().Add(30 * time.Second)
	for d.fwd.Status().ConsecutiveFailures == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failure reported while the server was down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	is.True(d.fwd.Status().LastError != nil)
	runServer(t, srvPort, dir)
	d.waitForwarded(t, 1500)
	inOrder(t, received(t, nc, "EVENTS"), 1500)
}

// flaky passes batches on, but often says it failed after the broker took
// them all, or part, so the forwarder sends them again.
type flaky struct {
	mu   sync.Mutex
	rng  *rand.Rand
	next eventstore.Sink
}

func (f *flaky) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	f.mu.Lock()
	roll := f.rng.IntN(3)
	f.mu.Unlock()
	n, err := f.next.Send(ctx, events)
	if err == nil && roll == 0 {
		return 0, errors.New("lost the acknowledgement")
	}
	return n, err
}

func TestForward_RandomFailuresExactlyOnce(t *testing.T) {
	t.Parallel()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	sink, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}})
	if err != nil {
		t.Fatal(err)
	}
	d := newDevice(t, &flaky{rng: rand.New(rand.NewPCG(3, 4)), next: sink})
	d.write(t, 20, 2000)
	d.run()
	defer d.stop()
	d.waitForwarded(t, 2000)
	// Resent batches were dropped by JetStream as duplicates.
	inOrder(t, received(t, nc, "EVENTS"), 2000)
}

func TestDefaultSubject(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	is.Equal(jetstream.DefaultSubject(eventstore.RecordedEvent{StreamID: "order-12"}), "events.order.order-12")
	is.Equal(jetstream.DefaultSubject(eventstore.RecordedEvent{StreamID: "a.b c*>-1"}), "events.a_b_c__.a_b_c__-1")
	is.Equal(jetstream.Token(""), "_")
}

func TestNew_StreamWithoutName(t *testing.T) {
	t.Parallel()
	srv := runServer(t, 0, t.TempDir())
	nc := connect(t, srv.ClientURL())
	_, err := jetstream.New(context.Background(), nc, &jetstream.Options{Stream: &jetstream.StreamConfig{}})
	if !errors.Is(err, eventstore.ErrInvalidArgument) {
		t.Fatal(err)
	}
}

// portOf returns the port of a host:port address.
func portOf(t testing.TB, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
