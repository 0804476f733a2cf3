package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// routerRegistry registers opened, deposited and deposited's old shape.
func routerRegistry(t *testing.T) *eventstore.Registry {
	t.Helper()
	r := eventstore.NewRegistry()
	if err := errors.Join(
		eventstore.Register[opened](r, "Opened"),
		eventstore.Register[deposited](r, "Deposited"),
		eventstore.Upcast(r, "Deposited.v1", func(old depositedV1) (deposited, error) {
			return deposited{Cents: int64(old.Amount * 100)}, nil
		}),
		eventstore.Register[depositedV1](r, "Unhandled"),
	); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRouter_Handle(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	var got []string
	r := eventstore.NewRouter(routerRegistry(t))
	eventstore.On(r, func(_ context.Context, e opened, meta eventstore.RecordedEvent) error {
		got = append(got, fmt.Sprintf("opened %s by %s@%d", e.Owner, meta.StreamID, meta.Version))
		return nil
	})
	eventstore.On(r, func(_ context.Context, e deposited, meta eventstore.RecordedEvent) error {
		got = append(got, fmt.Sprintf("deposited %d (%s)", e.Cents, meta.Type))
		return nil
	})
	is.NoErr(r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Type: "Opened", Data: []byte(`{"owner":"ann"}`)}))
	is.NoErr(r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 1, Type: "Deposited", Data: []byte(`{"cents":5}`)}))
	is.NoErr(r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 2, Type: "Deposited.v1", Data: []byte(`{"amount":1.5}`)}))
	// Skipped by default: a type the registry knows without a handler, and
	// one it does not know, even with data that would not decode.
	is.NoErr(r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 3, Type: "Unhandled", Data: []byte(`{`)}))
	is.NoErr(r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 4, Type: "Closed"}))
	is.Equal(got, []string{"opened ann by account-1@0", "deposited 5 (Deposited)", "deposited 150 (Deposited.v1)"})

	// The handler's error comes back as it is.
	boom := errors.New("boom")
	r2 := eventstore.NewRouter(routerRegistry(t), &eventstore.RouterOptions{Strict: true})
	eventstore.On(r2, func(context.Context, opened, eventstore.RecordedEvent) error { return boom })
	is.Equal(r2.Handle(ctx, eventstore.RecordedEvent{Type: "Opened", Data: []byte(`{"owner":"ann"}`)}), boom)

	// Strict: what has no handler is an error that says where.
	err := r2.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 3, Position: 9, Type: "Unhandled", Data: []byte(`{}`)})
	is.True(errors.Is(err, eventstore.ErrUnhandledEvent))
	is.True(!errors.Is(err, eventstore.ErrUnknownEventType))
	is.Equal(err.Error(), "route Unhandled (stream account-1, version 3, position 9): eventstore: no handler for event type")
	err = r2.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-1", Version: 4, Type: "Closed"})
	is.True(errors.Is(err, eventstore.ErrUnhandledEvent))
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))

	// Data that does not decode, or is invalid, is an error that says where.
	err = r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-7", Version: 12, Position: 40, Type: "Deposited", Data: []byte(`{"cents":"x"}`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	is.True(strings.HasPrefix(err.Error(), "decode Deposited (stream account-7, version 12, position 40): "))
	err = r.Handle(ctx, eventstore.RecordedEvent{StreamID: "account-7", Version: 13, Type: "Opened", Data: []byte(`{"owner":""}`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	is.True(strings.HasPrefix(err.Error(), "decode Opened (stream account-7, version 13): "))
}

func TestRouter_OnMisuse(t *testing.T) {
	t.Parallel()
	r := eventstore.NewRouter(routerRegistry(t))
	eventstore.On(r, func(context.Context, opened, eventstore.RecordedEvent) error { return nil })
	for name, f := range map[string]func(){
		"nil registry": func() { eventstore.NewRouter(nil) },
		"two options": func() {
			eventstore.NewRouter(routerRegistry(t), &eventstore.RouterOptions{}, &eventstore.RouterOptions{Strict: true})
		},
		"nil router": func() {
			eventstore.On(nil, func(context.Context, opened, eventstore.RecordedEvent) error { return nil })
		},
		"nil handler":  func() { eventstore.On[opened](r, nil) },
		"unregistered": func() { eventstore.On(r, func(context.Context, tally, eventstore.RecordedEvent) error { return nil }) },
		"pointer": func() {
			eventstore.On(r, func(context.Context, *deposited, eventstore.RecordedEvent) error { return nil })
		},
		"interface": func() {
			eventstore.On(r, func(context.Context, accountEvent, eventstore.RecordedEvent) error { return nil })
		},
		"second handler": func() { eventstore.On(r, func(context.Context, opened, eventstore.RecordedEvent) error { return nil }) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				err, _ := recover().(error)
				if !errors.Is(err, eventstore.ErrInvalidArgument) {
					t.Errorf("recovered %v, want a panic with ErrInvalidArgument", err)
				}
			}()
			f()
		})
	}
}

// TestRouter_Consumer runs a router as a consumer's handler on each
// backend, with an event that does not decode among the others: it is
// parked with an error that names its type, stream and version.
func TestRouter_Consumer(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, store *eventstore.Store) {
		is := is.New(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		registry := routerRegistry(t)
		handled := make(chan string, 10)
		r := eventstore.NewRouter(registry)
		eventstore.On(r, func(_ context.Context, e deposited, meta eventstore.RecordedEvent) error {
			handled <- fmt.Sprintf("%s %d", meta.StreamID, e.Cents)
			return nil
		})
		for _, data := range []string{`{"cents":1}`, `{"cents":"two"}`, `{"cents":3}`} {
			_, err := store.Append(ctx, "account-1", eventstore.Any, eventstore.Event{Type: "Deposited", Data: []byte(data)})
			is.NoErr(err)
		}
		failed := make(chan error, 1)
		done := make(chan error, 1)
		go func() {
			done <- store.Consume(ctx, eventstore.ConsumerOptions{
				Name: "deposits", Handler: r.Handle, ParkAfter: 1, MinBackoff: time.Millisecond,
				OnError: func(_ eventstore.RecordedEvent, err error, _ int, _ bool) { failed <- err },
			})
		}()
		is.Equal(<-handled, "account-1 1")
		is.Equal(<-handled, "account-1 3") // after the parked one
		err := <-failed
		is.True(errors.Is(err, eventstore.ErrInvalidEvent))
		is.True(strings.HasPrefix(err.Error(), "decode Deposited (stream account-1, version 1, position "))
		cancel()
		<-done
		parked, err := store.Parked(context.Background(), "deposits")
		is.NoErr(err)
		is.Equal(len(parked), 1)
		is.True(strings.Contains(parked[0].Error, "Deposited (stream account-1, version 1, position"))
	})
}

// TestRouter_TxHandler runs a router as an exactly-once consumer's
// TxHandler on SQLite, the only backend with transactions for handlers.
func TestRouter_TxHandler(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := testBackends[1].open(t, nil)
	handled := make(chan int64, 10)
	r := eventstore.NewRouter(routerRegistry(t))
	eventstore.On(r, func(ctx context.Context, e deposited, _ eventstore.RecordedEvent) error {
		if sqlite.Tx(ctx) == nil {
			return errors.New("no transaction")
		}
		handled <- e.Cents
		return nil
	})
	_, err := store.Append(ctx, "account-1", eventstore.Any,
		eventstore.Event{Type: "Opened", Data: []byte(`{"owner":"ann"}`)},
		eventstore.Event{Type: "Deposited", Data: []byte(`{"cents":7}`)})
	is.NoErr(err)
	done := make(chan error, 1)
	go func() { done <- store.Consume(ctx, eventstore.ConsumerOptions{Name: "tx", TxHandler: r.Handle}) }()
	is.Equal(<-handled, int64(7))
	cancel()
	<-done
}

func TestDecodeAs(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	reg := routerRegistry(t)
	d, err := eventstore.DecodeAs[deposited](reg, eventstore.RecordedEvent{Type: "Deposited.v1", Data: []byte(`{"amount":2}`)})
	is.NoErr(err)
	is.Equal(d, deposited{Cents: 200}) // upcast
	ae, err := eventstore.DecodeAs[accountEvent](reg, eventstore.RecordedEvent{Type: "Opened", Data: []byte(`{"owner":"bo"}`)})
	is.NoErr(err)
	is.Equal(ae, accountEvent(opened{Owner: "bo"})) // an interface the type implements

	_, err = eventstore.DecodeAs[deposited](reg, eventstore.RecordedEvent{StreamID: "account-3", Version: 4, Position: 11, Type: "Opened", Data: []byte(`{"owner":"bo"}`)})
	is.True(errors.Is(err, eventstore.ErrWrongEventType))
	is.Equal(err.Error(), "decode Opened (stream account-3, version 4, position 11): eventstore: event of another type: eventstore_test.opened is not a eventstore_test.deposited")
	_, err = eventstore.DecodeAs[deposited](reg, eventstore.RecordedEvent{Type: "Closed"})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	_, err = eventstore.DecodeAs[opened](reg, eventstore.RecordedEvent{Type: "Opened", Data: []byte(`{`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	_, err = eventstore.DecodeAs[opened](nil, eventstore.RecordedEvent{Type: "Opened"})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
}
