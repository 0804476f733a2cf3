package memory_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/google/uuid"
)

// A store for a unit test: in memory, with a fixed clock and counted
// event IDs, so that what the code under test wrote can be compared
// whole, timestamps and IDs included.
func ExampleNew() {
	var n atomic.Uint64 // appends may run concurrently
	store := eventstore.New(memory.New(), &eventstore.Options{
		Clock: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		NewEventID: func() uuid.UUID {
			var id uuid.UUID
			binary.BigEndian.PutUint64(id[8:], n.Add(1))
			return id
		},
	})
	defer store.Close()
	ctx := context.Background()

	// Given: the history the test starts from.
	if _, err := store.Append(ctx, "cart-1", eventstore.NoStream, eventstore.Event{Type: "ItemAdded", Data: []byte(`{"sku":"tea"}`)}); err != nil {
		log.Fatal(err)
	}
	// When: the code under test runs (here, a plain append).
	if _, err := store.Append(ctx, "cart-1", eventstore.Exact(0), eventstore.Event{Type: "CheckedOut"}); err != nil {
		log.Fatal(err)
	}
	// Then: the stream holds what it should.
	for e, err := range store.ReadStream(ctx, "cart-1", eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, e.ID, e.RecordedAt.Format(time.RFC3339))
	}
	// Output:
	// 0 ItemAdded 00000000-0000-0000-0000-000000000001 2026-01-02T03:04:05Z
	// 1 CheckedOut 00000000-0000-0000-0000-000000000002 2026-01-02T03:04:05Z
}
