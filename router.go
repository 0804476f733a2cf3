package eventstore

import (
	"context"
	"fmt"
	"reflect"
	"sync"
)

// Router hands stored events to handlers of their Go types, decoded by a
// [Registry]: a projection or process manager written as one function per
// event type, with no type switch. Add handlers with [On]; [Router.Handle]
// is then a consumer's Handler or TxHandler:
//
//	r := eventstore.NewRouter(registry)
//	eventstore.On(r, func(ctx context.Context, e AccountOpened, meta eventstore.RecordedEvent) error {
//		...
//	})
//	err := store.Consume(ctx, eventstore.ConsumerOptions{Name: "balances", Handler: r.Handle})
//
// Safe for concurrent use; handlers are usually added before the first
// event is handled.
type Router struct {
	registry *Registry
	strict   bool

	mu       sync.RWMutex
	handlers map[reflect.Type]func(ctx context.Context, v any, e RecordedEvent) error
}

// RouterOptions configure a [Router]. The zero value, like nil, gives the
// defaults.
type RouterOptions struct {
	// Strict makes [Router.Handle] fail on an event it has no handler for,
	// with an error matching [ErrUnhandledEvent] (and [ErrUnknownEventType]
	// too when the registry does not know the event's type). A consumer
	// retries such an error like any other, so pair Strict with
	// [ConsumerOptions.ParkAfter] or a filter on the handled types.
	// Default: false: Handle skips the event, without decoding it, and
	// returns nil, as a projection of a few types of a category wants.
	Strict bool
}

// NewRouter returns a router without handlers that decodes events with
// registry. Options are optional: NewRouter(reg) gives the defaults, as
// does a nil *RouterOptions. A nil registry, or more than one opts, is a
// programming error: NewRouter panics, with an error matching
// [ErrInvalidArgument].
func NewRouter(registry *Registry, opts ...*RouterOptions) *Router {
	if registry == nil {
		panic(fmt.Errorf("eventstore: NewRouter: %w", invalidf("nil *Registry")))
	}
	if len(opts) > 1 {
		panic(fmt.Errorf("eventstore: NewRouter: %w", invalidf("%d options, want at most one", len(opts))))
	}
	r := &Router{registry: registry, handlers: map[reflect.Type]func(context.Context, any, RecordedEvent) error{}}
	if len(opts) == 1 && opts[0] != nil {
		r.strict = opts[0].Strict
	}
	return r
}

// On makes r hand every event that decodes to a T to h, with the stored
// event as meta (its stream, version, position, metadata). T must be
// registered in the router's registry; events stored under an upcast old
// name reach h too, as the T they decode to. A nil router or handler, a T
// the registry does not know, or a second handler for T is a programming
// error: On panics, with an error matching [ErrInvalidArgument], at
// start-up rather than with the first event.
func On[T any](r *Router, h func(ctx context.Context, e T, meta RecordedEvent) error) {
	typ := reflect.TypeFor[T]()
	var problem string
	switch {
	case r == nil:
		problem = "nil *Router"
	case h == nil:
		problem = "nil handler"
	}
	if problem == "" {
		if !r.registry.registered(typ) {
			problem = fmt.Sprintf("%v is not a type registered in the router's registry", typ)
		}
	}
	if problem == "" {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.handlers[typ]; ok {
			problem = fmt.Sprintf("a second handler for %v", typ)
		} else {
			r.handlers[typ] = func(ctx context.Context, v any, e RecordedEvent) error { return h(ctx, v.(T), e) }
		}
	}
	if problem != "" {
		panic(fmt.Errorf("eventstore: On: %w", invalidf("%s", problem)))
	}
}

// Handle decodes e and calls the handler of its Go type, returning the
// handler's error as it is. It has the signature of
// [ConsumerOptions.Handler] and [ConsumerOptions.TxHandler]. An event
// without a handler (its type unknown to the registry, or known but with
// no handler) is skipped, or an error under [RouterOptions.Strict]. An
// event that fails to decode is an error matching [ErrInvalidEvent] that
// names its type, stream, version and position.
func (r *Router) Handle(ctx context.Context, e RecordedEvent) error {
	dec, known := r.registry.decoder(e.Type)
	var h func(context.Context, any, RecordedEvent) error
	if known {
		r.mu.RLock()
		h = r.handlers[dec.typ]
		r.mu.RUnlock()
	}
	switch {
	case h != nil:
	case !r.strict:
		return nil
	case !known:
		return fmt.Errorf("route %s: %w (%w)", where(e), ErrUnhandledEvent, ErrUnknownEventType)
	default:
		return fmt.Errorf("route %s: %w", where(e), ErrUnhandledEvent)
	}
	v, err := dec.decodeEvent(e)
	if err != nil {
		return err
	}
	return h(ctx, v, e)
}
