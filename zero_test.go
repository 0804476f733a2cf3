package eventstore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// panicked calls f and returns what it panicked with, nil if it did not.
func panicked(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

// isConstructionPanic reports whether v is the panic of a constructor
// given a nil argument: an error matching ErrInvalidArgument that names
// the argument.
func isConstructionPanic(v any, name string) bool {
	err, ok := v.(error)
	return ok && errors.Is(err, eventstore.ErrInvalidArgument) && strings.Contains(err.Error(), name)
}

func TestRegistry_ZeroValue(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var r eventstore.Registry // no NewRegistry
	_, ok := r.Name(opened{})
	is.True(!ok)
	_, err := r.Decode(eventstore.RecordedEvent{Type: "Opened"})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	// Upcasting to a type not registered yet is refused, not a panic.
	is.True(errors.Is(eventstore.Upcast(&r, "Old", func(int) (opened, error) { return opened{}, nil }), eventstore.ErrUnknownEventType))

	is.NoErr(eventstore.Register[opened](&r, "Opened"))
	is.NoErr(eventstore.Upcast(&r, "Opened.v0", func(old struct{ Name string }) (opened, error) { return opened{Owner: old.Name}, nil }))
	e, err := r.Encode(opened{Owner: "ann"})
	is.NoErr(err)
	v, err := r.Decode(eventstore.RecordedEvent{Type: e.Type, Data: e.Data})
	is.NoErr(err)
	is.Equal(v, opened{Owner: "ann"})
	v, err = r.Decode(eventstore.RecordedEvent{Type: "Opened.v0", Data: []byte(`{"Name":"bo"}`)})
	is.NoErr(err)
	is.Equal(v, opened{Owner: "bo"})
}

func TestRegistry_Nil(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var r *eventstore.Registry
	is.True(errors.Is(eventstore.Register[opened](r, "Opened"), eventstore.ErrInvalidArgument))
	is.True(errors.Is(eventstore.Upcast(r, "Old", func(int) (opened, error) { return opened{}, nil }), eventstore.ErrInvalidArgument))
	_, ok := r.Name(opened{})
	is.True(!ok) // a nil registry is empty, like a nil map
	_, err := r.Encode(opened{Owner: "ann"})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	_, err = r.Decode(eventstore.RecordedEvent{Type: "Opened"})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	is.True(isConstructionPanic(panicked(func() { eventstore.RegistryCodec[any](nil) }), "nil *Registry"))
}

func TestNew_NilBackend(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]eventstore.Backend{
		"Nil":       nil,
		"NilMemory": (*memory.Backend)(nil),
		"NilSQLite": (*sqlite.Backend)(nil),
	} {
		if v := panicked(func() { eventstore.New(b, nil) }); !isConstructionPanic(v, "nil Backend") {
			t.Errorf("%s: New panicked with %v", name, v)
		}
	}
}

func TestNewRepository_NilArguments(t *testing.T) {
	t.Parallel()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	noDecide, noEvolve := tallyDecider, tallyDecider
	noDecide.Decide, noEvolve.Evolve = nil, nil
	for name, f := range map[string]func(){
		"store":          func() { eventstore.NewRepository(nil, tallyDecider, addedCodec{}, nil) },
		"Decider.Decide": func() { eventstore.NewRepository(store, noDecide, addedCodec{}, nil) },
		"Decider.Evolve": func() { eventstore.NewRepository(store, noEvolve, addedCodec{}, nil) },
		"codec":          func() { eventstore.NewRepository[tally, add, added](store, tallyDecider, nil, nil) },
	} {
		if v := panicked(f); !isConstructionPanic(v, "nil "+name) {
			t.Errorf("nil %s: NewRepository panicked with %v", name, v)
		}
	}
	// Everything given: no panic.
	is.New(t).Equal(panicked(func() { eventstore.NewRepository(store, tallyDecider, addedCodec{}, nil) }), nil)
}
