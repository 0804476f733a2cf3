package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
)

type AccountOpened struct {
	Owner string `json:"owner"`
}

type MoneyDeposited struct {
	Cents int64 `json:"cents"`
}

// A projection as one handler per event type: Handle is also a consumer's
// Handler or TxHandler.
func ExampleRouter() {
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	registry := eventstore.NewRegistry()
	if err := errors.Join(
		eventstore.Register[AccountOpened](registry, "AccountOpened"),
		eventstore.Register[MoneyDeposited](registry, "MoneyDeposited"),
	); err != nil {
		log.Fatal(err)
	}

	balances := map[string]int64{}
	r := eventstore.NewRouter(registry)
	eventstore.On(r, func(_ context.Context, e AccountOpened, meta eventstore.RecordedEvent) error {
		balances[meta.StreamID] = 0
		return nil
	})
	eventstore.On(r, func(_ context.Context, e MoneyDeposited, meta eventstore.RecordedEvent) error {
		balances[meta.StreamID] += e.Cents
		return nil
	})

	for _, v := range []any{AccountOpened{Owner: "ada"}, MoneyDeposited{Cents: 250}, MoneyDeposited{Cents: 100}} {
		e, err := registry.Encode(v)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := store.Append(ctx, "account-42", eventstore.Any, e); err != nil {
			log.Fatal(err)
		}
	}
	for e, err := range store.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			log.Fatal(err)
		}
		if err := r.Handle(ctx, e); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(balances)
	// Output:
	// map[account-42:350]
}

// Decode one event as the type it should be.
func ExampleDecodeAs() {
	registry := eventstore.NewRegistry()
	if err := eventstore.Register[MoneyDeposited](registry, "MoneyDeposited"); err != nil {
		log.Fatal(err)
	}
	e := eventstore.RecordedEvent{StreamID: "account-42", Version: 3, Type: "MoneyDeposited", Data: []byte(`{"cents":250}`)}
	d, err := eventstore.DecodeAs[MoneyDeposited](registry, e)
	fmt.Println(d.Cents, err)

	e.Data = []byte(`{"cents":"lots"}`)
	_, err = eventstore.DecodeAs[MoneyDeposited](registry, e)
	fmt.Println(errors.Is(err, eventstore.ErrInvalidEvent))
	// Output:
	// 250 <nil>
	// true
}
