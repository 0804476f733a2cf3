package eventstore_test

import (
	"context"
	"fmt"
	"log"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
)

// Keep the last three readings of each sensor: reads are truncated at
// once, and Prune removes the rest from storage, but only what the
// forwarder "central" has shipped.
func ExampleStore_Prune() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()

	for i := range 5 {
		if _, err := store.Append(ctx, "sensor-1", eventstore.Any, eventstore.Event{Type: "Reading", Data: fmt.Appendf(nil, `{"n":%d}`, i)}); err != nil {
			log.Fatal(err)
		}
	}
	if err := store.SetCategoryRetention(ctx, "sensor", eventstore.Retention{MaxCount: 3}); err != nil {
		log.Fatal(err)
	}
	for e, err := range store.ReadStream(ctx, "sensor-1", eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("read", e.Version)
	}

	// The forwarder has shipped the first event only (its checkpoint,
	// as Forwarder.Run saves it).
	if err := store.ResetConsumer(ctx, "outbox/central", 2); err != nil {
		log.Fatal(err)
	}
	res, err := store.Prune(ctx, eventstore.PruneOptions{After: []string{"central"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("removed %d, kept back %d\n", res.Events, res.KeptBack)
	// Output:
	// read 2
	// read 3
	// read 4
	// removed 1, kept back 1
}
