package eventstore

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
)

// Validator is implemented by event types that can check themselves.
// A [Registry] calls Validate when it encodes an event (so an invalid event
// is never appended) and when it decodes one.
type Validator interface {
	Validate() error
}

// Registry maps event type names to Go types, with JSON as the encoding:
// typed events without reflection in your domain code, and without a
// package-level registry. Register types with [Register] and old versions
// with [Upcast]; then [Registry.Encode] and [Registry.Decode] convert, or
// [RegistryCodec] adapts the registry to a [Repository]. Safe for
// concurrent use. The zero value is an empty registry, ready to use, and a
// nil *Registry reads as an empty one (registering into it is
// [ErrInvalidArgument]).
type Registry struct {
	mu     sync.RWMutex
	byName map[string]decoder
	byType map[reflect.Type]string
}

// decoder turns stored data into the current Go value of its type, typ.
type decoder struct {
	decode func(data []byte) (any, error)
	typ    reflect.Type
}

// NewRegistry returns an empty registry, as new(Registry) does.
func NewRegistry() *Registry { return new(Registry) }

// lockForWrite locks r and makes its maps, which the zero value lacks.
func (r *Registry) lockForWrite() {
	r.mu.Lock()
	if r.byName == nil {
		r.byName, r.byType = map[string]decoder{}, map[reflect.Type]string{}
	}
}

// Register maps the event type name to the Go type T (a struct, usually),
// both ways. A name or type registered twice is [ErrInvalidArgument].
func Register[T any](r *Registry, name string) error {
	if err := validateType(name); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if r == nil {
		return fmt.Errorf("register %s: %w", name, invalidf("nil *Registry"))
	}
	typ := reflect.TypeFor[T]()
	r.lockForWrite()
	defer r.mu.Unlock()
	if _, ok := r.byName[name]; ok {
		return fmt.Errorf("register %s: %w", name, invalidf("name registered twice"))
	}
	if other, ok := r.byType[typ]; ok {
		return fmt.Errorf("register %s: %w", name, invalidf("Go type %v is already registered as %s", typ, other))
	}
	r.byType[typ] = name
	r.byName[name] = decoder{typ: typ, decode: func(data []byte) (any, error) {
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidEvent, name, err)
		}
		return v, nil
	}}
	return nil
}

// Upcast makes events stored under an old type name decode as the
// current Go type New: their data decodes into Old, and fn converts it.
// New must be registered already. Chains are functions: to go from v1 to
// v3, give fn the whole conversion.
func Upcast[Old, New any](r *Registry, oldName string, fn func(Old) (New, error)) error {
	if err := validateType(oldName); err != nil {
		return fmt.Errorf("upcast: %w", err)
	}
	if r == nil {
		return fmt.Errorf("upcast %s: %w", oldName, invalidf("nil *Registry"))
	}
	r.lockForWrite()
	defer r.mu.Unlock()
	if _, ok := r.byType[reflect.TypeFor[New]()]; !ok {
		return fmt.Errorf("upcast %s: %w: the target type %v is not registered", oldName, ErrUnknownEventType, reflect.TypeFor[New]())
	}
	if _, ok := r.byName[oldName]; ok {
		return fmt.Errorf("upcast %s: %w", oldName, invalidf("name registered twice"))
	}
	r.byName[oldName] = decoder{typ: reflect.TypeFor[New](), decode: func(data []byte) (any, error) {
		var old Old
		if err := json.Unmarshal(data, &old); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidEvent, oldName, err)
		}
		v, err := fn(old)
		if err != nil {
			return nil, fmt.Errorf("%w: upcast %s: %v", ErrInvalidEvent, oldName, err)
		}
		return v, nil
	}}
	return nil
}

// Name returns the type name v's Go type is registered under. A pointer
// is looked up as the type it points to.
func (r *Registry) Name(v any) (string, bool) {
	typ := reflect.TypeOf(v)
	for typ != nil && typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if r == nil {
		return "", false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	name, ok := r.byType[typ]
	return name, ok
}

// registered reports whether typ itself (not a pointer to it) is
// registered.
func (r *Registry) registered(typ reflect.Type) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.byType[typ]
	return ok
}

// Encode returns v as an Event of its registered type name, with v as
// JSON data, after calling its Validate method if it has one. An
// unregistered type is [ErrUnknownEventType]; a failed validation is
// [ErrInvalidEvent] (and [ErrInvalidArgument]).
func (r *Registry) Encode(v any) (Event, error) {
	name, ok := r.Name(v)
	if !ok {
		return Event{}, fmt.Errorf("encode %T: %w", v, ErrUnknownEventType)
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return Event{}, fmt.Errorf("encode %s: %w", name, invalidf("nil %T", v))
	}
	if err := validate(v); err != nil {
		return Event{}, fmt.Errorf("encode %s: %w: %w: %v", name, ErrInvalidArgument, ErrInvalidEvent, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("encode %s: %w", name, invalidf("%v", err))
	}
	return Event{Type: name, Data: data}, nil
}

// Decode returns the Go value of a stored event: of its registered type,
// or, for an old type name, what its upcaster makes of it. The value is
// validated if its type has a Validate method. An unregistered type name
// is [ErrUnknownEventType]; data that does not decode, or fails
// validation, is [ErrInvalidEvent]. The error names the event's type,
// stream, version and position, so that a consumer's failure says where.
func (r *Registry) Decode(e RecordedEvent) (any, error) {
	dec, ok := r.decoder(e.Type)
	if !ok {
		return nil, fmt.Errorf("decode %s: %w", where(e), ErrUnknownEventType)
	}
	return dec.decodeEvent(e)
}

// decoder returns the decoder of the type name.
func (r *Registry) decoder(name string) (decoder, bool) {
	if r == nil {
		return decoder{}, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	dec, ok := r.byName[name]
	return dec, ok
}

func (d decoder) decodeEvent(e RecordedEvent) (any, error) {
	v, err := d.decode(e.Data)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", where(e), err)
	}
	if err := validate(v); err != nil {
		return nil, fmt.Errorf("decode %s: %w: %v", where(e), ErrInvalidEvent, err)
	}
	return v, nil
}

// where names a stored event for an error: its type, stream, version and,
// once it has one, position.
func where(e RecordedEvent) string {
	if e.Position > 0 {
		return fmt.Sprintf("%s (stream %s, version %d, position %d)", e.Type, e.StreamID, e.Version, e.Position)
	}
	return fmt.Sprintf("%s (stream %s, version %d)", e.Type, e.StreamID, e.Version)
}

// DecodeAs returns the Go value of a stored event as a T, as
// [Registry.Decode] makes it (upcast and validated): for one-off use where
// a [Router] is more than needed. T may be a registered type or an
// interface that it implements. An event that decodes to something that is
// not a T is [ErrWrongEventType]; the errors of Decode are as there. Every
// error names the event's type, stream and version.
func DecodeAs[T any](r *Registry, e RecordedEvent) (T, error) {
	var zero T
	v, err := r.Decode(e)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("decode %s: %w: %T is not a %v", where(e), ErrWrongEventType, v, reflect.TypeFor[T]())
	}
	return t, nil
}

func validate(v any) error {
	if val, ok := v.(Validator); ok {
		return val.Validate()
	}
	// A value type whose Validate has a pointer receiver.
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		if val, ok := p.Interface().(Validator); ok {
			return val.Validate()
		}
	}
	return nil
}

// RegistryCodec adapts a registry to the [Codec] of a [Repository] whose
// events are of type E, typically an interface that the registered event
// types implement. A decoded value that is not an E is
// [ErrUnknownEventType] and [ErrWrongEventType]. A nil r is a programming error: RegistryCodec
// panics with an error matching [ErrInvalidArgument].
func RegistryCodec[E any](r *Registry) Codec[E] {
	if r == nil {
		panic(fmt.Errorf("eventstore: RegistryCodec: %w", invalidf("nil *Registry")))
	}
	return registryCodec[E]{r}
}

type registryCodec[E any] struct{ r *Registry }

func (c registryCodec[E]) Encode(e E) (Event, error) { return c.r.Encode(e) }

func (c registryCodec[E]) Decode(e RecordedEvent) (E, error) {
	v, err := c.r.Decode(e)
	if err != nil {
		var zero E
		return zero, err
	}
	ev, ok := v.(E)
	if !ok {
		var zero E
		return zero, fmt.Errorf("decode %s: %w (%w): %T is not a %v", where(e), ErrUnknownEventType, ErrWrongEventType, v, reflect.TypeFor[E]())
	}
	return ev, nil
}
