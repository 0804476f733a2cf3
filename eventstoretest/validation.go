package eventstoretest

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

func testValidation(t *testing.T, newBackend NewBackend) {
	t.Run("BadInputWritesNothing", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("ok-1", eventstore.Any, ev("E"))
		dupID := uuid.New()
		long := strings.Repeat("x", eventstore.MaxStreamIDLen+1)
		appends := map[string]struct {
			stream   string
			expected eventstore.ExpectedVersion
			events   []eventstore.Event
		}{
			"EmptyStream":       {"", eventstore.Any, []eventstore.Event{ev("E")}},
			"LongStream":        {long, eventstore.Any, []eventstore.Event{ev("E")}},
			"NULInStream":       {"a\x00b", eventstore.Any, []eventstore.Event{ev("E")}},
			"NewlineInStream":   {"a\nb", eventstore.Any, []eventstore.Event{ev("E")}},
			"DELInStream":       {"a\x7fb", eventstore.Any, []eventstore.Event{ev("E")}},
			"C1InStream":        {"a\u0085b", eventstore.Any, []eventstore.Event{ev("E")}},
			"InvalidUTF8":       {"a\xffb", eventstore.Any, []eventstore.Event{ev("E")}},
			"NoEvents":          {"ok-1", eventstore.Any, nil},
			"EmptyType":         {"ok-1", eventstore.Any, []eventstore.Event{ev("E"), {Data: []byte("{}")}}},
			"ControlInType":     {"ok-1", eventstore.Any, []eventstore.Event{{Type: "A\tB"}}},
			"LongType":          {"ok-1", eventstore.Any, []eventstore.Event{{Type: strings.Repeat("t", eventstore.MaxTypeLen+1)}}},
			"SameIDTwice":       {"ok-1", eventstore.Any, []eventstore.Event{{ID: dupID, Type: "E"}, {ID: dupID, Type: "E"}}},
			"NegativeExact":     {"ok-1", eventstore.Exact(-5), []eventstore.Event{ev("E")}},
			"UnknownExpected":   {"ok-1", eventstore.ExpectedVersion(-3), []eventstore.Event{ev("E")}},
			"VeryNegativeValue": {"ok-1", eventstore.ExpectedVersion(-100), []eventstore.Event{ev("E")}},
		}
		for name, a := range appends {
			_, err := b.store.Append(b.ctx, a.stream, a.expected, a.events...)
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
			}
		}
		b.is.True(errors.Is(b.store.DeleteStream(b.ctx, "", eventstore.Any), eventstore.ErrInvalidArgument))
		b.is.True(errors.Is(b.store.DeleteStream(b.ctx, "ok-1", eventstore.ExpectedVersion(-9)), eventstore.ErrInvalidArgument))
		_, err := b.store.StreamVersion(b.ctx, "bad\x01")
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
		_, err = b.store.StreamExists(b.ctx, "")
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))

		reads := map[string]func() error{
			"ReadStreamBadID": func() error { _, err := collect(b.store.ReadStream(b.ctx, "", eventstore.ReadOptions{})); return err },
			"ReadStreamNegFrom": func() error {
				_, err := collect(b.store.ReadStream(b.ctx, "ok-1", eventstore.ReadOptions{From: -1}))
				return err
			},
			"ReadStreamNegLimit": func() error {
				_, err := collect(b.store.ReadStream(b.ctx, "ok-1", eventstore.ReadOptions{Limit: -1}))
				return err
			},
			"ReadAllNegFrom": func() error {
				_, err := collect(b.store.ReadAll(b.ctx, eventstore.ReadOptions{From: -1}, eventstore.Filter{}))
				return err
			},
			"ListStreamsNegLimit": func() error {
				_, err := collect(b.store.ListStreams(b.ctx, eventstore.ListOptions{Limit: -1}))
				return err
			},
		}
		for name, read := range reads {
			if err := read(); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
			}
		}

		log := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.Equal(len(log), 1) // nothing bad was written
		v, err := b.store.StreamVersion(b.ctx, "ok-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(0))
	})

	t.Run("EventTooLarge", func(t *testing.T) {
		b := setup(t, newBackend)
		big := make([]byte, 1<<20)
		_, err := b.store.Append(b.ctx, "big-1", eventstore.Any, ev("Small"), eventstore.Event{Type: "Big", Data: big, Metadata: []byte("x")})
		b.is.True(errors.Is(err, eventstore.ErrEventTooLarge))
		b.is.True(errors.Is(err, eventstore.ErrInvalidArgument))
		ok, err := b.store.StreamExists(b.ctx, "big-1")
		b.is.NoErr(err)
		b.is.True(!ok)                                                                // nothing of the append was written
		b.appendOK("big-1", eventstore.Any, eventstore.Event{Type: "Big", Data: big}) // exactly the limit is fine

		// The limit is an option.
		store := eventstore.New(newBackend(t), &eventstore.Options{MaxEventSize: 10})
		defer store.Close()
		_, err = store.Append(b.ctx, "s-1", eventstore.Any, eventstore.Event{Type: "E", Data: []byte("01234567890")})
		b.is.True(errors.Is(err, eventstore.ErrEventTooLarge))
		unlimited := eventstore.New(newBackend(t), &eventstore.Options{MaxEventSize: -1})
		defer unlimited.Close()
		_, err = unlimited.Append(b.ctx, "s-1", eventstore.Any, eventstore.Event{Type: "E", Data: make([]byte, 2<<20)})
		b.is.NoErr(err)
	})

	// Every numeric option has a documented maximum; beyond it the call
	// fails with ErrInvalidArgument instead of panicking or overflowing.
	t.Run("OptionMaximums", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("ok-1", eventstore.Any, ev("E"))
		for name, opts := range map[string]eventstore.SubscribeOptions{
			"BufferMaxInt":   {Buffer: math.MaxInt},
			"BufferTooLarge": {Buffer: eventstore.MaxBuffer + 1},
		} {
			sub, err := b.store.Subscribe(b.ctx, opts)
			if !errors.Is(err, eventstore.ErrInvalidArgument) || sub != nil {
				t.Errorf("Subscribe %s: %v", name, err)
			}
		}
		sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Buffer: eventstore.MaxBuffer})
		b.is.NoErr(err) // the maximum itself
		b.is.Equal(receive(t, sub, 1)[0].StreamID, "ok-1")
		b.is.NoErr(sub.Close())

		h := func(context.Context, eventstore.RecordedEvent) error { return nil }
		// A cancelled context: a consumer whose options pass returns at
		// once with the context's error instead of running.
		cancelled, cancel := context.WithCancel(b.ctx)
		cancel()
		for name, opts := range map[string]eventstore.ConsumerOptions{
			"Buffer":             {Buffer: math.MaxInt},
			"BufferTooLarge":     {Buffer: eventstore.MaxBuffer + 1},
			"CheckpointEvery":    {CheckpointEvery: math.MaxInt},
			"CheckpointInterval": {CheckpointInterval: math.MaxInt64},
			"MinBackoff":         {MinBackoff: math.MaxInt64},
			"MaxBackoff":         {MaxBackoff: math.MaxInt64},
			"BackoffsTooLong":    {MinBackoff: 25 * time.Hour, MaxBackoff: 25 * time.Hour},
			"ParkAfter":          {ParkAfter: math.MaxInt},
			"GroupSize":          {Group: eventstore.Group{Member: 0, Size: math.MaxInt}},
		} {
			opts.Name, opts.Handler = "limits", h
			if err := b.store.Consume(cancelled, opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("Consume %s: %v", name, err)
			}
		}
		err = b.store.Consume(cancelled, eventstore.ConsumerOptions{
			Name: "limits", Handler: h, Buffer: eventstore.MaxBuffer,
			MinBackoff: 24 * time.Hour, MaxBackoff: 24 * time.Hour, CheckpointInterval: 24 * time.Hour,
		})
		b.is.True(errors.Is(err, context.Canceled)) // the maximums themselves pass

		var sink acceptAll
		for name, opts := range map[string]eventstore.ForwarderOptions{
			"BatchSize":         {BatchSize: math.MaxInt},
			"BatchSizeOver":     {BatchSize: eventstore.MaxBatchSize + 1},
			"BatchSizeOverflow": {BatchSize: math.MaxInt/2 + 1}, // twice it is negative
			"MinBackoff":        {MinBackoff: math.MaxInt64},
			"MaxBackoff":        {MaxBackoff: math.MaxInt64},
		} {
			opts.Name, opts.Sink = "limits", sink
			if _, err := b.store.NewForwarder(opts); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("NewForwarder %s: %v", name, err)
			}
		}
		_, err = b.store.NewForwarder(eventstore.ForwarderOptions{Name: "limits", Sink: sink, BatchSize: eventstore.MaxBatchSize, MaxBackoff: 24 * time.Hour})
		b.is.NoErr(err)

		for name, opts := range map[string]eventstore.ListOptions{
			"LongPrefix":   {Prefix: strings.Repeat("p", eventstore.MaxStreamIDLen+1)},
			"LongCategory": {Category: strings.Repeat("c", eventstore.MaxStreamIDLen+1)},
			"LongAfter":    {After: strings.Repeat("a", eventstore.MaxStreamIDLen+1)},
		} {
			if _, err := collect(b.store.ListStreams(b.ctx, opts)); !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Errorf("ListStreams %s: %v", name, err)
			}
		}
	})

	t.Run("OddButValidIDs", func(t *testing.T) {
		b := setup(t, newBackend)
		for _, id := range []string{
			"-", "a-", "-b", "x-1+2+3", "ünïcödé-✓", "with space-1", "quote'-\"1", "percent%_-1",
			"semi;colon-1", strings.Repeat("y", eventstore.MaxStreamIDLen), "glob*[?]-1",
		} {
			res := b.appendOK(id, eventstore.NoStream, ev("Odd"))
			b.is.Equal(res.Version, int64(0))
			got := all(b.is, b.store.ReadStream(b.ctx, id, eventstore.ReadOptions{}))
			b.is.Equal(len(got), 1)
			b.is.Equal(got[0].StreamID, id)
			listed := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{Prefix: id}))
			b.is.Equal(listed[0].ID, id)
			byStream := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{Streams: []string{id}}))
			b.is.Equal(len(byStream), 1)
		}
		// A prefix containing LIKE and GLOB metacharacters is taken literally.
		for _, p := range []string{"percent%", "percent%_", "glob*[", "%", "_"} {
			for info, err := range b.store.ListStreams(b.ctx, eventstore.ListOptions{Prefix: p}) {
				b.is.NoErr(err)
				b.is.True(strings.HasPrefix(info.ID, p))
			}
		}
	})
}

func testLifecycle(t *testing.T, newBackend NewBackend) {
	t.Run("Closed", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("c-1", eventstore.Any, ev("E"))
		seq := b.store.ReadStream(b.ctx, "c-1", eventstore.ReadOptions{})
		b.is.NoErr(b.store.Close())
		b.is.True(errors.Is(b.store.Close(), eventstore.ErrClosed)) // second Close

		_, err := b.store.Append(b.ctx, "c-1", eventstore.Any, ev("E"))
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		_, err = b.store.StreamVersion(b.ctx, "c-1")
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		b.is.True(errors.Is(b.store.DeleteStream(b.ctx, "c-1", eventstore.Any), eventstore.ErrClosed))
		_, err = collect(b.store.ReadStream(b.ctx, "c-1", eventstore.ReadOptions{}))
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		_, err = collect(b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		_, err = collect(b.store.ListStreams(b.ctx, eventstore.ListOptions{}))
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		_, err = collect(seq) // made before Close, ranged after
		b.is.True(errors.Is(err, eventstore.ErrClosed))
	})

	t.Run("CancelledContext", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("ctx-1", eventstore.Any, numbered("E", 600)...)
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		_, err := b.store.Append(ctx, "ctx-1", eventstore.Any, ev("E"))
		b.is.True(errors.Is(err, context.Canceled))
		_, err = b.store.StreamVersion(ctx, "ctx-1")
		b.is.True(errors.Is(err, context.Canceled))
		b.is.True(errors.Is(b.store.DeleteStream(ctx, "ctx-1", eventstore.Any), context.Canceled))
		_, err = collect(b.store.ReadStream(ctx, "ctx-1", eventstore.ReadOptions{}))
		b.is.True(errors.Is(err, context.Canceled))
		_, err = collect(b.store.ListStreams(ctx, eventstore.ListOptions{}))
		b.is.True(errors.Is(err, context.Canceled))
		v, err := b.store.StreamVersion(b.ctx, "ctx-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(599)) // the cancelled append wrote nothing

		// Cancelling in the middle of a read ends it with ctx.Err().
		ctx, cancel = context.WithCancel(b.ctx)
		defer cancel()
		n := 0
		var last error
		for _, err := range b.store.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
			if err != nil {
				last = err
				break
			}
			if n++; n == 10 {
				cancel()
			}
		}
		b.is.True(errors.Is(last, context.Canceled))
		b.is.Equal(n, 10) // nothing after the cancel
	})
}

// acceptAll is a sink that accepts every batch.
type acceptAll struct{}

func (acceptAll) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	return len(events), nil
}
