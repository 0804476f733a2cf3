// Edge is a device that keeps its own event store and forwards every event
// to a central NATS JetStream server, riding out an outage of the server.
// The server is embedded here so that the example runs anywhere:
//
//	go run ./examples/edge
//
// On a real device the store file lives on the device and the server is
// your cluster: only the sink's URL changes.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/jetstream"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

func main() {
	dir, err := os.MkdirTemp("", "edge-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(context.Background(), os.Stdout, dir); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, out io.Writer, dir string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The central side: a JetStream server (embedded for the demo).
	central, err := startServer(-1, filepath.Join(dir, "central"))
	if err != nil {
		return err
	}
	url := central.ClientURL()
	fmt.Fprintf(out, "Central JetStream server on %s (embedded for this demo)\n", url)

	// The device: its own store, and a forwarder to the central stream.
	backend, err := sqlite.Open(filepath.Join(dir, "device.db"), nil)
	if err != nil {
		return err
	}
	store := eventstore.New(backend, nil)
	defer store.Close()
	sink, err := jetstream.Connect(ctx, url, jetstream.ConnectOptions{Name: "device-7"},
		&jetstream.Options{Stream: &jetstream.StreamConfig{Name: "EVENTS"}, AckTimeout: time.Second})
	if err != nil {
		return err
	}
	defer sink.Close()
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	go fwd.Run(ctx)

	read := func(n, from int) error {
		for i := range n {
			stream := fmt.Sprintf("sensor-%d", (from+i)%3+1)
			data := fmt.Appendf(nil, `{"celsius":%.1f}`, 20+float64((from+i)%7)/2)
			if _, err := store.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "TemperatureRead", Data: data}); err != nil {
				return err
			}
		}
		return nil
	}
	if err := read(30, 0); err != nil {
		return err
	}
	if err := waitFor(fwd, 30); err != nil {
		return err
	}
	fmt.Fprintf(out, "Device wrote 30 readings; the forwarder has shipped up to position %d\n", fwd.Status().Position)

	// An outage: the device goes on writing, nothing waits for the network.
	_, port, err := net.SplitHostPort(central.Addr().String())
	if err != nil {
		return err
	}
	central.Shutdown()
	central.WaitForShutdown()
	fmt.Fprintln(out, "\nCentral server down. The device keeps writing 20 more readings...")
	start := time.Now()
	if err := read(20, 30); err != nil {
		return err
	}
	fmt.Fprintf(out, "  20 appends took %v in all: writes never wait for the network\n", time.Since(start).Round(time.Millisecond))
	for fwd.Status().ConsecutiveFailures < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	st := fwd.Status()
	fmt.Fprintf(out, "  forwarder: %d failed attempts so far, %d events waiting, backing off\n", st.ConsecutiveFailures, st.Pending)

	p, err := strconv.Atoi(port)
	if err != nil {
		return err
	}
	central, err = startServer(p, filepath.Join(dir, "central"))
	if err != nil {
		return err
	}
	defer central.Shutdown()
	start = time.Now()
	if err := waitFor(fwd, 50); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nCentral server back: the backlog drained in %v\n", time.Since(start).Round(time.Millisecond))

	// What arrived centrally, as a central service would read it.
	nc, err := nats.Connect(central.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		return err
	}
	stream, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		return err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Central stream EVENTS holds %d messages for 50 events: each once, in order\n", info.State.Msgs)
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		if seq > 3 && seq < info.State.LastSeq-2 {
			if seq == 4 {
				fmt.Fprintln(out, "  ...")
			}
			continue
		}
		m, err := stream.GetMsg(ctx, seq)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  #%-3s %-24s %s %s\n", m.Header.Get(jetstream.HeaderPosition), m.Subject, m.Header.Get(jetstream.HeaderType), m.Data)
	}
	return nil
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
