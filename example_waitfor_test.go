package eventstore_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
)

// Read-your-writes: after a command, wait for the projection's consumer to
// pass what it appended, then read the projection. The consumer handles
// only orders; its checkpoint passes the other events too, so its lag
// reaches 0.
func ExampleStore_WaitFor() {
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	totals := map[string]int{} // the projection
	go store.Consume(ctx, eventstore.ConsumerOptions{
		Name:   "totals",
		Filter: eventstore.Filter{Categories: []string{"order"}},
		Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
			mu.Lock()
			defer mu.Unlock()
			totals[e.StreamID]++
			return nil
		},
	})

	if _, err := store.Append(ctx, "order-1", eventstore.Any, eventstore.Event{Type: "Placed"}); err != nil {
		log.Fatal(err)
	}
	res, err := store.Append(ctx, "audit-1", eventstore.Any, eventstore.Event{Type: "Logged"})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.WaitFor(ctx, "totals", res.Position); err != nil {
		log.Fatal(err)
	}
	mu.Lock()
	fmt.Println("order-1:", totals["order-1"])
	mu.Unlock()
	infos, err := store.Consumers(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("lag:", infos[0].Lag, "caught up:", infos[0].CaughtUp)
	// Output:
	// order-1: 1
	// lag: 0 caught up: true
}
