package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/edge-es/eventstore/tagged"
)

// FuzzStreamID: any string is either refused with ErrInvalidArgument, or
// works as a stream ID end to end, with a category and cardinal ID that
// are parts of it.
func FuzzStreamID(f *testing.F) {
	for _, s := range []string{"account-1", "account", "a-1+b", "", "-", "x\x00y", "ü-✓", "a\u0085b", strings.Repeat("z", 513), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		ctx := context.Background()
		store := eventstore.New(memory.New(), nil)
		defer store.Close()
		_, err := store.Append(ctx, id, eventstore.Any, eventstore.Event{Type: "E"})
		if verr := eventstore.ValidateStreamID(id); verr != nil {
			if !errors.Is(err, eventstore.ErrInvalidArgument) || !errors.Is(verr, eventstore.ErrInvalidArgument) {
				t.Fatalf("%q: %v / %v", id, verr, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%q: valid but %v", id, err)
		}
		if c := eventstore.Category(id); !strings.HasPrefix(id, c) {
			t.Fatalf("category %q of %q", c, id)
		}
		if !strings.Contains(id, eventstore.CardinalID(id)) {
			t.Fatalf("cardinal ID of %q", id)
		}
		for e, err := range store.ReadStream(ctx, id, eventstore.ReadOptions{}) {
			if err != nil || e.StreamID != id {
				t.Fatalf("%q read back as %q: %v", id, e.StreamID, err)
			}
		}
	})
}

// FuzzEventRoundTrip appends arbitrary events to a SQLite file: each is
// refused with ErrInvalidArgument, or read back byte for byte.
func FuzzEventRoundTrip(f *testing.F) {
	f.Add("Placed", []byte(`{"total":1}`), []byte(nil))
	f.Add("", []byte("x"), []byte("y"))
	f.Add("Type\twith tab", []byte{0, 1, 2}, []byte{0xff})
	f.Add("'; DROP TABLE events; --", []byte(`'); DELETE FROM streams; --`), []byte(`"`))
	dir := f.TempDir()
	b, err := sqlite.Open(filepath.Join(dir, "fuzz.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	store := eventstore.New(b, nil)
	f.Cleanup(func() { store.Close() })
	f.Fuzz(func(t *testing.T, typ string, data, metadata []byte) {
		ctx := context.Background()
		res, err := store.Append(ctx, "fuzz-1", eventstore.Any, eventstore.Event{Type: typ, Data: data, Metadata: metadata})
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidArgument) {
				t.Fatalf("%q: %v", typ, err)
			}
			return
		}
		for e, err := range store.ReadStream(ctx, "fuzz-1", eventstore.ReadOptions{From: res.Version}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type != typ || string(e.Data) != string(data) || string(e.Metadata) != string(metadata) {
				t.Fatalf("wrote %q %q %q, read %q %q %q", typ, data, metadata, e.Type, e.Data, e.Metadata)
			}
		}
	})
}

// FuzzFilter runs arbitrary filters against the same events on SQLite
// (which pushes parts of the filter into SQL) and on memory (the
// reference): both refuse the same filters, and return the same events.
func FuzzFilter(f *testing.F) {
	f.Add("order-*", "order", "Placed", `{"n":1}`)
	f.Add("[", "", "", `{}`)
	f.Add("*-1", "account", "Opened", `{"owner":"ann"}`)
	f.Add(`a\*`, "a", "T", `null`)
	f.Add("order-[0-9]", "order", "", `{"n":1.0}`)
	ctx := context.Background()
	b, err := sqlite.Open(filepath.Join(f.TempDir(), "fuzz.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	lite, mem := eventstore.New(b, nil), eventstore.New(memory.New(), nil)
	f.Cleanup(func() { lite.Close(); mem.Close() })
	for _, s := range []*eventstore.Store{lite, mem} {
		for i, stream := range []string{"order-1", "order-22", "account-1", "account", "a*-x", "order-a/b", "orderly-3"} {
			for _, typ := range []string{"Placed", "Opened", "T"} {
				data := []byte(`{"n":` + string(rune('0'+i%3)) + `,"owner":"ann"}`)
				if _, err := s.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: typ, Data: data}); err != nil {
					f.Fatal(err)
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, glob, category, typ, payload string) {
		filter := eventstore.Filter{StreamGlob: glob}
		if category != "" {
			filter.Categories = []string{category}
		}
		if typ != "" {
			filter.Types = []string{typ}
		}
		var p map[string]any
		if json.Unmarshal([]byte(payload), &p) == nil {
			filter.Payload = p
		}
		read := func(s *eventstore.Store) ([]int64, error) {
			var out []int64
			for e, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, filter) {
				if err != nil {
					return out, err
				}
				out = append(out, e.Position)
			}
			return out, nil
		}
		gotLite, errLite := read(lite)
		gotMem, errMem := read(mem)
		if (errLite == nil) != (errMem == nil) {
			t.Fatalf("%+v: sqlite %v, memory %v", filter, errLite, errMem)
		}
		if errLite != nil {
			if !errors.Is(errLite, eventstore.ErrInvalidArgument) {
				t.Fatalf("%+v: %v", filter, errLite)
			}
			return
		}
		if !slices.Equal(gotLite, gotMem) {
			t.Fatalf("%+v: sqlite %v, memory %v", filter, gotLite, gotMem)
		}
	})
}

// FuzzDecode feeds arbitrary stored events to a registry: no panic, and
// every error matches a sentinel.
func FuzzDecode(f *testing.F) {
	f.Add("Opened", []byte(`{"owner":"ann"}`))
	f.Add("Opened", []byte(`{"owner":""}`))
	f.Add("Deposited.v1", []byte(`{"amount":1e308}`))
	f.Add("Unknown", []byte(`{}`))
	f.Add("Deposited", []byte(`[`))
	r := eventstore.NewRegistry()
	if err := errors.Join(
		eventstore.Register[opened](r, "Opened"),
		eventstore.Register[deposited](r, "Deposited"),
		eventstore.Upcast(r, "Deposited.v1", func(old depositedV1) (deposited, error) { return deposited{Cents: int64(old.Amount * 100)}, nil }),
	); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		v, err := r.Decode(eventstore.RecordedEvent{Type: typ, Data: data})
		if err != nil {
			if !errors.Is(err, eventstore.ErrUnknownEventType) && !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Fatalf("%q %q: %v", typ, data, err)
			}
			return
		}
		if _, err := r.Encode(v); err != nil {
			t.Fatalf("decoded %#v does not encode: %v", v, err)
		}
		if _, err := tagged.Parse(data); err != nil && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}

// fuzzStores returns a SQLite and a memory store holding the same events:
// streams s-0 (versions 0 to 3) and s-1 (0 to 2), positions 1 to 7.
func fuzzStores(f *testing.F) (lite, mem *eventstore.Store) {
	b, err := sqlite.Open(filepath.Join(f.TempDir(), "fuzz.db"), nil)
	if err != nil {
		f.Fatal(err)
	}
	lite, mem = eventstore.New(b, nil), eventstore.New(memory.New(), nil)
	f.Cleanup(func() { lite.Close(); mem.Close() })
	for _, s := range []*eventstore.Store{lite, mem} {
		for i := range 7 {
			if _, err := s.Append(context.Background(), fmt.Sprintf("s-%d", i%2), eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
				f.Fatal(err)
			}
		}
	}
	return lite, mem
}

// fuzzFilters are filters that SQLite reads in different ways: the whole
// log, an index walk, a union of walks, in Go.
var fuzzFilters = []eventstore.Filter{
	{},
	{Streams: []string{"s-1"}},
	{Streams: []string{"s-0", "s-1"}},
	{Categories: []string{"s"}, Types: []string{"E"}},
	{StreamGlob: "*-0"},
}

// FuzzReadOptions reads with arbitrary ReadOptions from SQLite and from
// memory: no panic, both refuse the same options with ErrInvalidArgument,
// and both yield the same events.
func FuzzReadOptions(f *testing.F) {
	f.Add(int64(0), false, 0, uint8(0))
	f.Add(int64(math.MaxInt64), true, 0, uint8(1))
	f.Add(int64(math.MaxInt64), false, math.MaxInt, uint8(2))
	f.Add(int64(3), true, 2, uint8(3))
	f.Add(int64(-1), false, -1, uint8(4))
	f.Add(int64(math.MinInt64), true, math.MinInt, uint8(0))
	lite, mem := fuzzStores(f)
	f.Fuzz(func(t *testing.T, from int64, backward bool, limit int, filter uint8) {
		ctx := context.Background()
		opts := eventstore.ReadOptions{From: from, Backward: backward, Limit: limit}
		reads := map[string]func(*eventstore.Store) iter.Seq2[eventstore.RecordedEvent, error]{
			"ReadAll": func(s *eventstore.Store) iter.Seq2[eventstore.RecordedEvent, error] {
				return s.ReadAll(ctx, opts, fuzzFilters[int(filter)%len(fuzzFilters)])
			},
			"ReadStream": func(s *eventstore.Store) iter.Seq2[eventstore.RecordedEvent, error] {
				return s.ReadStream(ctx, "s-0", opts)
			},
		}
		for name, read := range reads {
			gotLite, errLite := fuzzPositions(read(lite))
			gotMem, errMem := fuzzPositions(read(mem))
			if (errLite == nil) != (errMem == nil) || (errLite != nil && !errors.Is(errLite, eventstore.ErrInvalidArgument)) {
				t.Fatalf("%s %+v: sqlite %v, memory %v", name, opts, errLite, errMem)
			}
			if !slices.Equal(gotLite, gotMem) {
				t.Fatalf("%s %+v: sqlite %v, memory %v", name, opts, gotLite, gotMem)
			}
			if (errLite != nil) != (from < 0 || limit < 0) {
				t.Fatalf("%s %+v: %v", name, opts, errLite)
			}
		}
	})
}

func fuzzPositions(seq iter.Seq2[eventstore.RecordedEvent, error]) ([]int64, error) {
	var out []int64
	for e, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, e.Position)
	}
	return out, nil
}

// FuzzListOptions lists streams with arbitrary ListOptions on SQLite and
// memory: no panic, the same refusals, the same streams.
func FuzzListOptions(f *testing.F) {
	f.Add("s-", "", "", 0)
	f.Add("", "s", "s-0", 1)
	f.Add("\xff", "\x00", "\xff\xff", math.MaxInt)
	f.Add(strings.Repeat("s", 513), "", "", math.MinInt)
	lite, mem := fuzzStores(f)
	f.Fuzz(func(t *testing.T, prefix, category, after string, limit int) {
		ctx := context.Background()
		opts := eventstore.ListOptions{Prefix: prefix, Category: category, After: after, Limit: limit}
		list := func(s *eventstore.Store) ([]string, error) {
			var out []string
			for info, err := range s.ListStreams(ctx, opts) {
				if err != nil {
					return out, err
				}
				out = append(out, info.ID)
			}
			return out, nil
		}
		gotLite, errLite := list(lite)
		gotMem, errMem := list(mem)
		if (errLite == nil) != (errMem == nil) || (errLite != nil && !errors.Is(errLite, eventstore.ErrInvalidArgument)) {
			t.Fatalf("%+v: sqlite %v, memory %v", opts, errLite, errMem)
		}
		if !slices.Equal(gotLite, gotMem) {
			t.Fatalf("%+v: sqlite %v, memory %v", opts, gotLite, gotMem)
		}
		valid := limit >= 0 && len(prefix) <= eventstore.MaxStreamIDLen &&
			len(category) <= eventstore.MaxStreamIDLen && len(after) <= eventstore.MaxStreamIDLen
		if (errLite == nil) != valid {
			t.Fatalf("%+v: %v", opts, errLite)
		}
	})
}

// The documented maximums of the options that have no exported constant.
const (
	docMaxCount = 1_000_000
	docMaxWait  = 24 * time.Hour
)

// FuzzSubscribeOptions subscribes with arbitrary options: no panic, and
// exactly the options outside the documented ranges are refused, with
// ErrInvalidArgument.
func FuzzSubscribeOptions(f *testing.F) {
	f.Add(int64(0), 0)
	f.Add(int64(-1), 1)
	f.Add(int64(math.MaxInt64), eventstore.MaxBuffer)
	f.Add(int64(-2), math.MaxInt)
	f.Add(int64(math.MinInt64), math.MinInt)
	f.Add(int64(7), eventstore.MaxBuffer+1)
	lite, mem := fuzzStores(f)
	f.Fuzz(func(t *testing.T, from int64, buffer int) {
		valid := from >= eventstore.FromNow && buffer >= 0 && buffer <= eventstore.MaxBuffer
		for _, s := range []*eventstore.Store{lite, mem} {
			sub, err := s.Subscribe(context.Background(), eventstore.SubscribeOptions{From: from, Buffer: buffer})
			if (err == nil) != valid || (err != nil && !errors.Is(err, eventstore.ErrInvalidArgument)) {
				t.Fatalf("from %d, buffer %d: %v", from, buffer, err)
			}
			if err != nil {
				continue
			}
			if from >= 1 && from <= 7 {
				if e := <-sub.Events(); e.Position != from {
					t.Fatalf("from %d: first event at %d (%v)", from, e.Position, sub.Err())
				}
			}
			sub.Close()
			if err := sub.Err(); err != nil {
				t.Fatalf("from %d, buffer %d: %v", from, buffer, err)
			}
		}
	})
}

// FuzzConsumerOptions runs a consumer with arbitrary options: no panic,
// and exactly the options outside the documented ranges are refused.
func FuzzConsumerOptions(f *testing.F) {
	f.Add(int64(0), 0, int64(0), int64(0), int64(0), 0, 0, 0, 0)
	f.Add(int64(math.MaxInt64), math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), math.MaxInt, math.MaxInt, 0, math.MaxInt)
	f.Add(int64(1), docMaxCount, int64(docMaxWait), int64(docMaxWait), int64(docMaxWait), docMaxCount, eventstore.MaxBuffer, docMaxCount-1, docMaxCount)
	f.Add(int64(-1), docMaxCount+1, int64(docMaxWait+1), int64(1), int64(-1), -1, -1, -1, -1)
	f.Add(int64(math.MinInt64), math.MinInt, int64(math.MinInt64), int64(math.MinInt64), int64(math.MinInt64), math.MinInt, math.MinInt, math.MinInt, math.MinInt)
	_, mem := fuzzStores(f)
	f.Fuzz(func(t *testing.T, from int64, every int, interval, minBackoff, maxBackoff int64, park, buffer, member, size int) {
		inRange := func(v, hi int64) bool { return v >= 0 && v <= hi }
		valid := from >= eventstore.FromNow && inRange(int64(every), docMaxCount) &&
			inRange(interval, int64(docMaxWait)) && inRange(minBackoff, int64(docMaxWait)) &&
			inRange(maxBackoff, int64(docMaxWait)) && inRange(int64(park), docMaxCount) &&
			inRange(int64(buffer), eventstore.MaxBuffer) && inRange(int64(size), docMaxCount) &&
			((size == 0 && member == 0) || (size > 0 && member >= 0 && member < size))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		err := mem.Consume(ctx, eventstore.ConsumerOptions{
			Name: "fuzz", From: from, CheckpointEvery: every, CheckpointInterval: time.Duration(interval),
			MinBackoff: time.Duration(minBackoff), MaxBackoff: time.Duration(maxBackoff), ParkAfter: park,
			Buffer: buffer, Group: eventstore.Group{Member: member, Size: size},
			Handler: func(context.Context, eventstore.RecordedEvent) error { cancel(); return nil },
		})
		stopped := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		if valid != stopped || (!valid && !errors.Is(err, eventstore.ErrInvalidArgument)) {
			t.Fatalf("valid %v: %v", valid, err)
		}
		if !valid {
			return
		}
		// Start again from the beginning for the next run.
		if err := mem.ResetConsumer(context.Background(), "fuzz", 0); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzForwarderOptions creates and runs a forwarder with arbitrary
// options: no panic, and exactly the options outside the documented ranges
// are refused.
func FuzzForwarderOptions(f *testing.F) {
	f.Add(int64(0), 0, int64(0), int64(0))
	f.Add(int64(math.MaxInt64), math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64))
	f.Add(int64(1), eventstore.MaxBatchSize, int64(docMaxWait), int64(docMaxWait))
	f.Add(int64(-1), eventstore.MaxBatchSize+1, int64(docMaxWait+1), int64(1))
	f.Add(int64(2), math.MaxInt/2+1, int64(1), int64(-1))
	f.Add(int64(math.MinInt64), math.MinInt, int64(math.MinInt64), int64(math.MinInt64))
	_, mem := fuzzStores(f)
	f.Fuzz(func(t *testing.T, from int64, batch int, minBackoff, maxBackoff int64) {
		valid := from >= eventstore.FromNow && batch >= 0 && batch <= eventstore.MaxBatchSize &&
			minBackoff >= 0 && minBackoff <= int64(docMaxWait) && maxBackoff >= 0 && maxBackoff <= int64(docMaxWait)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		fwd, err := mem.NewForwarder(eventstore.ForwarderOptions{
			Name: "fuzz", From: from, BatchSize: batch,
			MinBackoff: time.Duration(minBackoff), MaxBackoff: time.Duration(maxBackoff),
			Sink: fuzzSink(func(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
				cancel()
				return len(events), nil
			}),
		})
		if (err == nil) != valid || (err != nil && !errors.Is(err, eventstore.ErrInvalidArgument)) {
			t.Fatalf("valid %v: %v", valid, err)
		}
		if err != nil {
			return
		}
		if err := fwd.Run(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
	})
}

// fuzzSink adapts a function to a [eventstore.Sink].
type fuzzSink func(ctx context.Context, events []eventstore.RecordedEvent) (int, error)

func (f fuzzSink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	return f(ctx, events)
}
