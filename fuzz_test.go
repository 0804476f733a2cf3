package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/sqlite"
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
		if _, err := eventstore.ParseTagged(data); err != nil && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Fatal(err)
		}
	})
}
