// Edge is a device that keeps its own event store and forwards every event
// to a central NATS JetStream server, riding out an outage of the server.
// It writes continuously into a store of fixed size: a storage budget, a
// retention policy that keeps the newest readings of each sensor, and a
// background prune that removes the expired ones only once the forwarder
// has shipped them, so that an outage loses nothing. The server is
// embedded here so that the example runs anywhere:
//
//	go run ./examples/edge
//
// On a real device the store file lives on the device and the server is
// your cluster: only the sink's URL changes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/jetstream"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// The device's limits.
//
// The device writes more than its budget holds (2,100 readings of 1 KiB),
// and keeps fewer readings per sensor than the outage brings (about 230
// each), so that the store stays within its budget only by pruning, and
// only After keeps the prune from removing readings not yet shipped.
const (
	budget    = 2 << 20 // the store's bytes on the disk, -wal and -shm included
	keep      = 100     // readings kept per sensor once shipped
	sensors   = 3
	perPhase  = 700  // readings written before, during and after the outage
	readingSz = 1000 // bytes of JSON per reading, about
)

func main() {
	dir, err := os.MkdirTemp("", "edge-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if _, err := run(context.Background(), os.Stdout, dir); err != nil {
		log.Fatal(err)
	}
}

// report is what run observed, for its test.
type report struct {
	Appended     int64  // events the device wrote
	Central      uint64 // messages the central stream holds
	LastCentral  int64  // position of the last one
	KeptBack     int64  // expired events the prune during the outage kept, unshipped
	Stored       int64  // events left in the store at the end
	MaxOnDisk    int64  // the most the store took on the disk, -wal and -shm included
	PrunedBehind int64  // events the forwarder found pruned before it shipped them: must be 0
}

func run(ctx context.Context, out io.Writer, dir string) (report, error) {
	var rep report
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The central side: a JetStream server (embedded for the demo).
	central, err := startServer(-1, filepath.Join(dir, "central"))
	if err != nil {
		return rep, err
	}
	url := central.ClientURL()
	fmt.Fprintf(out, "Central JetStream server on %s (embedded for this demo)\n", url)

	// The device: a store of at most 2 MiB, whose hooks count what the
	// prunes do, and would see the forwarder run into pruned events.
	path := filepath.Join(dir, "device.db")
	backend, err := sqlite.Open(path, &sqlite.Options{MaxBytes: budget})
	if err != nil {
		return rep, err
	}
	var pruned, prunedBehind atomic.Int64
	hooks := eventstore.Hooks{Event: func(_ context.Context, h eventstore.Happening) {
		switch h.Name {
		case "prune.done":
			pruned.Add(int64(h.Events))
		case "subscription.events_pruned":
			prunedBehind.Add(h.Position - h.From + 1)
		case "storage.low", "storage.full":
			fmt.Fprintf(out, "  storage: %s, %d of %d bytes\n", h.Name, h.Bytes, h.Limit)
		}
	}}
	store := eventstore.New(backend, &eventstore.Options{Hooks: hooks})
	defer store.Close()
	// Every sensor keeps its newest readings: older ones expire.
	if err := store.SetCategoryRetention(ctx, "sensor", eventstore.Retention{MaxCount: keep}); err != nil {
		return rep, err
	}
	sink, err := jetstream.Connect(ctx, url, jetstream.ConnectOptions{Name: "device-7"},
		&jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}, AckTimeout: time.Second})
	if err != nil {
		return rep, err
	}
	defer sink.Close()
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		return rep, err
	}
	go fwd.Run(ctx)

	note := func() {
		if n := onDisk(path); n > rep.MaxOnDisk {
			rep.MaxOnDisk = n
		}
	}
	read := func(n int) error {
		for range n {
			i := rep.Appended
			stream := fmt.Sprintf("sensor-%d", i%sensors+1)
			data := fmt.Appendf(nil, `{"celsius":%.1f,"seq":%d,"raw":"%0*d"}`, 20+float64(i%7)/2, i, readingSz-40, i)
			if _, err := store.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "TemperatureRead", Data: data}); err != nil {
				return err
			}
			rep.Appended++
			note()
		}
		return nil
	}
	if err := read(perPhase); err != nil {
		return rep, err
	}
	if err := waitFor(fwd, rep.Appended); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "Device wrote %d readings; the forwarder has shipped up to position %d\n", rep.Appended, fwd.Status().Position)

	// Pruning in the background: never an event the forwarder has not
	// shipped. The room of the pruned readings is kept for the next ones:
	// the store stays at its size, rather than shrink and grow again.
	prune := eventstore.PruneOptions{After: []string{"central"}, BatchSize: 250, KeepSpace: true}
	go store.PruneEvery(ctx, 20*time.Millisecond, prune)

	// An outage: the device goes on writing, nothing waits for the network.
	_, port, err := net.SplitHostPort(central.Addr().String())
	if err != nil {
		return rep, err
	}
	central.Shutdown()
	central.WaitForShutdown()
	fmt.Fprintf(out, "\nCentral server down. The device keeps writing %d more readings...\n", perPhase)
	start := time.Now()
	if err := read(perPhase); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "  %d appends took %v in all: writes never wait for the network\n", perPhase, time.Since(start).Round(time.Millisecond))
	for fwd.Status().ConsecutiveFailures < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	st := fwd.Status()
	fmt.Fprintf(out, "  forwarder: %d failed attempts so far, %d events waiting, backing off\n", st.ConsecutiveFailures, st.Pending)
	res, err := store.Prune(ctx, prune)
	if err != nil {
		return rep, err
	}
	rep.KeptBack = res.KeptBack
	note()
	fmt.Fprintf(out, "  prune: %d expired readings kept back, not shipped yet\n", res.KeptBack)

	p, err := strconv.Atoi(port)
	if err != nil {
		return rep, err
	}
	central, err = startServer(p, filepath.Join(dir, "central"))
	if err != nil {
		return rep, err
	}
	defer central.Shutdown()
	start = time.Now()
	if err := waitFor(fwd, rep.Appended); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "\nCentral server back: the backlog drained in %v\n", time.Since(start).Round(time.Millisecond))
	if err := read(perPhase); err != nil {
		return rep, err
	}
	if err := waitFor(fwd, rep.Appended); err != nil {
		return rep, err
	}
	if _, err := store.Prune(ctx, prune); err != nil {
		return rep, err
	}
	note()
	fs, err := backend.FileStats(ctx)
	if err != nil {
		return rep, err
	}
	rep.Stored, rep.PrunedBehind = fs.Events, prunedBehind.Load()
	fmt.Fprintf(out, "Device wrote %d readings in all; it keeps the newest %d (%d per sensor), having pruned %d once shipped\n",
		rep.Appended, rep.Stored, keep, pruned.Load())
	fmt.Fprintf(out, "The store took at most %.1f MiB of its %d MiB budget on the disk\n", float64(rep.MaxOnDisk)/(1<<20), budget>>20)

	// What arrived centrally, as a central service would read it.
	nc, err := nats.Connect(central.ClientURL())
	if err != nil {
		return rep, err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return rep, err
	}
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return rep, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return rep, err
	}
	rep.Central = info.State.Msgs
	fmt.Fprintf(out, "Central stream EVENTS holds %d messages for %d events: each once, in order\n", info.State.Msgs, rep.Appended)
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		if seq > 3 && seq < info.State.LastSeq-2 {
			if seq == 4 {
				fmt.Fprintln(out, "  ...")
			}
			continue
		}
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return rep, err
		}
		if seq == info.State.LastSeq {
			rep.LastCentral, _ = strconv.ParseInt(m.Header.Get(jetstream.HeaderPosition), 10, 64)
		}
		fmt.Fprintf(out, "  #%-5s %-24s %s %.40s...\n", m.Header.Get(jetstream.HeaderPosition), m.Subject, m.Header.Get(jetstream.HeaderType), m.Data)
	}
	return rep, nil
}

// onDisk is what the store at path takes on the disk.
func onDisk(path string) int64 {
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err == nil {
			n += fi.Size()
		} else if !errors.Is(err, os.ErrNotExist) {
			return -1
		}
	}
	return n
}

func startServer(port int, storeDir string) (*server.Server, error) {
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		return nil, fmt.Errorf("the JetStream server did not start")
	}
	return s, nil
}

func waitFor(fwd *eventstore.Forwarder, position int64) error {
	deadline := time.Now().Add(30 * time.Second)
	for fwd.Status().Position < position {
		if time.Now().After(deadline) {
			return fmt.Errorf("forwarded up to %d of %d: %v", fwd.Status().Position, position, fwd.Status().LastError)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
