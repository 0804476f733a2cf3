package jetstream_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/jetstream"
	"github.com/edge-es/eventstore/memory"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Ship a device's events to NATS JetStream: connect the sink (creating
// the stream), run a forwarder on the store, and read what arrived the way
// a central service would. The NATS server here runs inside the example,
// on a free port; a device connects to its central server's URL instead.
func ExampleConnect() {
	dir, err := os.MkdirTemp("", "eventstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Start()
	defer srv.WaitForShutdown()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		log.Fatal("nats-server did not start")
	}

	// The device side.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink, err := jetstream.Connect(ctx, srv.ClientURL(), jetstream.ConnectOptions{Name: "device-7"},
		&jetstream.Options{Stream: &jetstream.StreamConfig{Name: "DEVICES"}}) // subjects "events.>"
	if err != nil {
		log.Fatal(err)
	}
	defer sink.Close()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	defer func() { cancel(); <-done }()

	if _, err := store.Append(ctx, "order-1", eventstore.NoStream,
		eventstore.Event{Type: "Placed", Data: []byte(`{"total":30}`), Metadata: []byte(`{"user":"ann"}`)},
		eventstore.Event{Type: "Paid", Data: []byte(`{"method":"card"}`), Metadata: []byte(`{"user":"bob"}`)},
	); err != nil {
		log.Fatal(err)
	}

	// The central side: read the stream in order and decode each message.
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := natsjs.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := js.OrderedConsumer(ctx, "DEVICES", natsjs.OrderedConsumerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	for range 2 {
		m, err := consumer.Next(natsjs.FetchMaxWait(10 * time.Second))
		if err != nil {
			log.Fatal(err)
		}
		e, err := jetstream.Decode(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %s@%d position %d %s data %s metadata %s\n", m.Subject(), e.StreamID, e.Version, e.Position, e.Type, e.Data, e.Metadata)
	}
	// Output:
	// events.order.order-1: order-1@0 position 1 Placed data {"total":30} metadata {"user":"ann"}
	// events.order.order-1: order-1@1 position 2 Paid data {"method":"card"} metadata {"user":"bob"}
}
