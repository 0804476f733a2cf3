package httpsink_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/httpsink"
	"github.com/edge-es/eventstore/memory"
)

// Ship a device's events to a central HTTP endpoint: a forwarder on the
// store, posting to the endpoint through the sink. The endpoint here is an
// httptest server that decodes each batch and passes its events on.
func ExampleNew() {
	arrived := make(chan httpsink.Event, 10)
	central := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer device-7" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		batch, err := httpsink.Decode(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, e := range batch.Events {
			arrived <- e
		}
		// A 2xx accepts the whole batch.
	}))
	defer central.Close()

	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	sink, err := httpsink.New(central.URL, &httpsink.Options{Header: http.Header{"Authorization": {"Bearer device-7"}}})
	if err != nil {
		log.Fatal(err)
	}
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// The application only appends; the forwarder ships in the background.
	if _, err := store.Append(ctx, "order-1", eventstore.NoStream,
		eventstore.Event{Type: "Placed", Data: []byte(`{"total":30}`)},
		eventstore.Event{Type: "Paid", Data: []byte(`{"method":"card"}`)},
	); err != nil {
		log.Fatal(err)
	}
	if _, err := store.Append(ctx, "order-2", eventstore.NoStream, eventstore.Event{Type: "Placed", Data: []byte(`{"total":12}`)}); err != nil {
		log.Fatal(err)
	}

	for range 3 {
		e := <-arrived
		fmt.Printf("position %d: %s@%d %s %s\n", e.Position, e.Stream, e.Version, e.Type, e.Data)
	}
	// Output:
	// position 1: order-1@0 Placed {"total":30}
	// position 2: order-1@1 Paid {"method":"card"}
	// position 3: order-2@0 Placed {"total":12}
}
