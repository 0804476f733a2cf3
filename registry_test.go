package eventstore_test

import (
	"errors"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

type opened struct {
	Owner string `json:"owner"`
}

func (o opened) Validate() error {
	if o.Owner == "" {
		return errors.New("no owner")
	}
	return nil
}

type deposited struct {
	Cents int64 `json:"cents"`
}

// Validate has a pointer receiver: the registry must find it on values too.
func (d *deposited) Validate() error {
	if d.Cents <= 0 {
		return errors.New("deposit must be positive")
	}
	return nil
}

// depositedV1 is how deposits were stored before amounts were in cents.
type depositedV1 struct {
	Amount float64 `json:"amount"`
}

func TestRegistry(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	r := eventstore.NewRegistry()
	is.NoErr(eventstore.Register[opened](r, "Opened"))
	is.NoErr(eventstore.Register[deposited](r, "Deposited"))
	is.NoErr(eventstore.Upcast(r, "Deposited.v1", func(old depositedV1) (deposited, error) {
		return deposited{Cents: int64(old.Amount * 100)}, nil
	}))

	// Registration mistakes.
	is.True(errors.Is(eventstore.Register[opened](r, "Opened2"), eventstore.ErrInvalidArgument))   // type twice
	is.True(errors.Is(eventstore.Register[struct{}](r, "Opened"), eventstore.ErrInvalidArgument))  // name twice
	is.True(errors.Is(eventstore.Register[struct{ X int }](r, ""), eventstore.ErrInvalidArgument)) // no name
	is.True(errors.Is(eventstore.Upcast(r, "Old", func(int) (string, error) { return "", nil }), eventstore.ErrUnknownEventType))

	// Encode: by Go type, value or pointer, validated.
	e, err := r.Encode(opened{Owner: "ann"})
	is.NoErr(err)
	is.Equal(e.Type, "Opened")
	is.Equal(string(e.Data), `{"owner":"ann"}`)
	e, err = r.Encode(&deposited{Cents: 250})
	is.NoErr(err)
	is.Equal(e.Type, "Deposited")
	_, err = r.Encode(opened{})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	_, err = r.Encode(deposited{Cents: -1}) // pointer-receiver Validate on a value
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	_, err = r.Encode(depositedV1{})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	_, err = r.Encode((*deposited)(nil))
	is.True(errors.Is(err, eventstore.ErrInvalidArgument))
	_, err = r.Encode(nil)
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))

	// Decode: current types, old versions upcast, errors.
	v, err := r.Decode(eventstore.RecordedEvent{Type: "Deposited", Data: []byte(`{"cents":99}`)})
	is.NoErr(err)
	is.Equal(v, deposited{Cents: 99})
	v, err = r.Decode(eventstore.RecordedEvent{Type: "Deposited.v1", Data: []byte(`{"amount":12.5}`)})
	is.NoErr(err)
	is.Equal(v, deposited{Cents: 1250}) // the current Go type
	_, err = r.Decode(eventstore.RecordedEvent{Type: "Closed", Data: []byte(`{}`)})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
	_, err = r.Decode(eventstore.RecordedEvent{Type: "Opened", Data: []byte(`{"owner":`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent))
	_, err = r.Decode(eventstore.RecordedEvent{Type: "Opened", Data: []byte(`{"owner":""}`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent)) // validated on decode too
	_, err = r.Decode(eventstore.RecordedEvent{Type: "Deposited.v1", Data: []byte(`{"amount":-1}`)})
	is.True(errors.Is(err, eventstore.ErrInvalidEvent)) // the upcast value is validated
}

type accountEvent interface{ isAccountEvent() }

func (opened) isAccountEvent()    {}
func (deposited) isAccountEvent() {}

func TestRegistryCodec(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	r := eventstore.NewRegistry()
	is.NoErr(eventstore.Register[opened](r, "Opened"))
	is.NoErr(eventstore.Register[deposited](r, "Deposited"))
	is.NoErr(eventstore.Register[depositedV1](r, "NotAnAccountEvent"))
	codec := eventstore.RegistryCodec[accountEvent](r)
	e, err := codec.Encode(deposited{Cents: 5})
	is.NoErr(err)
	got, err := codec.Decode(eventstore.RecordedEvent{Type: e.Type, Data: e.Data})
	is.NoErr(err)
	is.Equal(got, accountEvent(deposited{Cents: 5}))
	_, err = codec.Decode(eventstore.RecordedEvent{Type: "NotAnAccountEvent", Data: []byte(`{}`)})
	is.True(errors.Is(err, eventstore.ErrUnknownEventType))
}
