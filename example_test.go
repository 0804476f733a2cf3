package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
)

// Append events to a stream and read them back.
func Example() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()

	res, err := store.Append(ctx, "account-42", eventstore.NoStream,
		eventstore.Event{Type: "Opened", Data: []byte(`{"owner":"ada"}`)},
		eventstore.Event{Type: "Deposited", Data: []byte(`{"amount":100}`)},
	)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("appended up to version", res.Version)

	for e, err := range store.ReadStream(ctx, "account-42", eventstore.ReadOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d %s %s\n", e.Version, e.Type, e.Data)
	}
	// Output:
	// appended up to version 1
	// 0 Opened {"owner":"ada"}
	// 1 Deposited {"amount":100}
}

// Two writers load the same stream version; the second append is refused,
// so it reloads and decides again instead of overwriting the first.
func Example_versionConflict() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()

	if _, err := store.Append(ctx, "seat-12A", eventstore.NoStream, eventstore.Event{Type: "Listed"}); err != nil {
		log.Fatal(err)
	}
	// Both writers read version 0.
	seen, _ := store.StreamVersion(ctx, "seat-12A")

	if _, err := store.Append(ctx, "seat-12A", eventstore.Exact(seen), eventstore.Event{Type: "Booked", Data: []byte(`{"by":"ann"}`)}); err != nil {
		log.Fatal(err)
	}
	_, err := store.Append(ctx, "seat-12A", eventstore.Exact(seen), eventstore.Event{Type: "Booked", Data: []byte(`{"by":"bob"}`)})

	var conflict *eventstore.VersionConflictError
	if errors.As(err, &conflict) {
		fmt.Printf("bob lost: expected %s, stream is at %d\n", conflict.Expected, conflict.Actual)
	}
	fmt.Println(errors.Is(err, eventstore.ErrWrongExpectedVersion))
	// Output:
	// bob lost: expected 0, stream is at 1
	// true
}

// Read the global log across streams, keeping only some events.
func Example_readAllWithFilter() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()

	appendOne := func(stream, typ, data string) {
		if _, err := store.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: typ, Data: []byte(data)}); err != nil {
			log.Fatal(err)
		}
	}
	appendOne("order-1", "Placed", `{"total":30,"country":"NO"}`)
	appendOne("user-7", "SignedUp", `{}`)
	appendOne("order-2", "Placed", `{"total":12,"country":"SE"}`)
	appendOne("order-1", "Shipped", `{"country":"NO"}`)
	appendOne("order-3", "Placed", `{"total":99,"country":"NO"}`)

	filter := eventstore.Filter{
		Categories: []string{"order"},               // streams "order-..."
		Types:      []string{"Placed"},              // of this type
		Payload:    map[string]any{"country": "NO"}, // whose JSON has this field
	}
	for e, err := range store.ReadAll(ctx, eventstore.ReadOptions{}, filter) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("#%d %s %s\n", e.Position, e.StreamID, e.Data)
	}
	// Output:
	// #1 order-1 {"total":30,"country":"NO"}
	// #5 order-3 {"total":99,"country":"NO"}
}

// Subscribe to a category: stored events first, then new ones as they are
// committed.
func ExampleStore_Subscribe() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()

	if _, err := store.Append(ctx, "order-1", eventstore.NoStream, eventstore.Event{Type: "Placed"}); err != nil {
		log.Fatal(err)
	}
	sub, err := store.Subscribe(ctx, eventstore.SubscribeOptions{
		Filter: eventstore.Filter{Categories: []string{"order"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	// Written after Subscribe: delivered live. The user event is filtered out.
	go func() {
		store.Append(ctx, "user-9", eventstore.Any, eventstore.Event{Type: "SignedUp"})
		store.Append(ctx, "order-2", eventstore.NoStream, eventstore.Event{Type: "Placed"})
		store.Append(ctx, "order-1", eventstore.Exact(0), eventstore.Event{Type: "Shipped"})
	}()

	for e := range sub.Events() {
		fmt.Printf("#%d %s %s\n", e.Position, e.StreamID, e.Type)
		if e.Type == "Shipped" {
			break
		}
	}
	// Output:
	// #1 order-1 Placed
	// #3 order-2 Placed
	// #4 order-1 Shipped
}

// A durable projection: a named consumer keeps account balances, and its
// checkpoint lets it resume where it stopped.
func ExampleStore_Consume() {
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	deposit := func(account string, amount int) {
		data := fmt.Appendf(nil, `{"amount":%d}`, amount)
		if _, err := store.Append(ctx, account, eventstore.Any, eventstore.Event{Type: "Deposited", Data: data}); err != nil {
			log.Fatal(err)
		}
	}
	deposit("account-1", 100)
	deposit("account-2", 40)
	deposit("account-1", 25)

	balances := map[string]int{}
	err := store.Consume(ctx, eventstore.ConsumerOptions{
		Name:   "balances",
		Filter: eventstore.Filter{Types: []string{"Deposited"}},
		Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
			var d struct{ Amount int }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err // retried with backoff
			}
			balances[e.StreamID] += d.Amount
			if e.Position == 3 {
				stop() // for the example: stop once caught up
			}
			return nil
		},
	})
	fmt.Println("stopped:", errors.Is(err, context.Canceled))
	fmt.Println(balances["account-1"], balances["account-2"])

	infos, err := store.Consumers(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range infos {
		fmt.Printf("%s at position %d, %d behind\n", c.Key, c.Position, c.Lag)
	}
	// Output:
	// stopped: true
	// 125 40
	// balances at position 3, 0 behind
}

// A light switch as a Decider: state, commands, events, and a Repository
// that loads, decides and appends with optimistic concurrency.
func ExampleRepository() {
	type state struct{ Lit bool }
	type command struct{ TurnOn bool }
	type event struct {
		On bool `json:"on"`
	}
	errAlready := errors.New("already in that position")

	decider := eventstore.Decider[state, command, event]{
		Decide: func(s state, c command) ([]event, error) {
			if s.Lit == c.TurnOn {
				return nil, errAlready // a domain error: nothing is written
			}
			return []event{{On: c.TurnOn}}, nil
		},
		Evolve: func(s state, e event) state { return state{Lit: e.On} },
	}
	registry := eventstore.NewRegistry()
	if err := eventstore.Register[event](registry, "Switched"); err != nil {
		log.Fatal(err)
	}
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	switches := eventstore.NewRepository(store, decider, eventstore.RegistryCodec[event](registry), nil)

	ctx := context.Background()
	for _, on := range []bool{true, true, false} {
		res, err := switches.Execute(ctx, "switch-hall", command{TurnOn: on})
		fmt.Printf("turn on=%v: state %+v, version %d, err %v\n", on, res.State, res.Version, err)
	}
	// Output:
	// turn on=true: state {Lit:true}, version 0, err <nil>
	// turn on=true: state {Lit:true}, version 0, err already in that position
	// turn on=false: state {Lit:false}, version 1, err <nil>
}

// Snapshots: store a stream's state as of a version, and load it back to
// read only the events after it.
func ExampleStore_SaveSnapshot() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	for range 5 {
		if _, err := store.Append(ctx, "counter-1", eventstore.Any, eventstore.Event{Type: "Incremented"}); err != nil {
			log.Fatal(err)
		}
	}
	// The count as of version 3 (four events).
	if err := store.SaveSnapshot(ctx, "counter-1", 3, []byte(`{"count":4}`), nil); err != nil {
		log.Fatal(err)
	}

	snap, err := store.LoadSnapshot(ctx, "counter-1")
	if err != nil {
		log.Fatal(err)
	}
	var state struct{ Count int }
	if err := json.Unmarshal(snap.Data, &state); err != nil {
		log.Fatal(err)
	}
	tail := 0
	for _, err := range store.ReadStream(ctx, "counter-1", eventstore.ReadOptions{From: snap.Version + 1}) {
		if err != nil {
			log.Fatal(err)
		}
		state.Count++
		tail++
	}
	fmt.Printf("snapshot at version %d, %d event(s) after it, count %d\n", snap.Version, tail, state.Count)
	// Output:
	// snapshot at version 3, 1 event(s) after it, count 5
}
