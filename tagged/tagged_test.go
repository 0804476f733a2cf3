package tagged_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/edge-es/eventstore/tagged"
	"github.com/matryer/is"
)

func sum(v any) tagged.Value { return tagged.Value{Tag: tagged.Sum, Value: v} }

func TestFold(t *testing.T) {
	t.Parallel()
	is := is.New(t)

	// Sums add up: 1 + 5 - 2 = 4.
	s := tagged.Fold(nil,
		map[string]any{"n": sum(1)}, map[string]any{"n": sum(5)}, map[string]any{"n": sum(-2)})
	is.Equal(tagged.Finalize(s)["n"], int64(4))

	// 0 + 100 - 30 = 70, and untagged and Overwrite values replace.
	s = tagged.Fold(nil,
		map[string]any{"balance": sum(0), "owner": "ann", "status": tagged.Value{Tag: tagged.Overwrite, Value: "new"}},
		map[string]any{"balance": sum(100), "owner": "bob"},
		map[string]any{"balance": sum(-30), "status": tagged.Value{Tag: tagged.Overwrite, Value: "open"}})
	final := tagged.Finalize(s)
	is.Equal(final, map[string]any{"balance": int64(70), "owner": "bob", "status": "open"})

	// From a snapshot's state: 500, then +100, -50 = 550.
	snapshot := map[string]any{"balance": sum(500)}
	s = tagged.Fold(snapshot, map[string]any{"balance": sum(100)}, map[string]any{"balance": sum(-50)})
	is.Equal(tagged.Finalize(s)["balance"], int64(550))
	is.Equal(snapshot["balance"], sum(500)) // the snapshot state is left alone

	// Without Finalize the tags stay, so a fold can go on from the result.
	is.Equal(s["balance"], sum(int64(550)))
	s = tagged.Fold(s, map[string]any{"balance": sum(1)})
	is.Equal(tagged.Finalize(s)["balance"], int64(551))

	// Non-numbers count as 0; fractions stay fractions.
	s = tagged.Fold(nil, map[string]any{"x": sum("ten")}, map[string]any{"x": sum(2.5)}, map[string]any{"x": sum(true)})
	is.Equal(tagged.Finalize(s)["x"], 2.5)

	// Left and right differ for overwrites only.
	a, b := map[string]any{"v": "first", "n": sum(1)}, map[string]any{"v": "second", "n": sum(2)}
	is.Equal(tagged.Finalize(tagged.Fold(nil, a, b)), map[string]any{"v": "second", "n": int64(3)})
	is.Equal(tagged.Finalize(tagged.FoldRight(nil, a, b)), map[string]any{"v": "first", "n": int64(3)})
}

func TestFoldEvents(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	store := eventstore.New(memory.New(), nil)
	defer store.Close()
	for _, data := range []string{
		`{"balance":{"$sum":100},"owner":"ann"}`,
		`{"balance":{"$sum":-30}}`,
		`{"balance":{"$sum":5},"owner":{"$overwrite":"bob"}}`,
	} {
		_, err := store.Append(ctx, "acct-1", eventstore.Any, eventstore.Event{Type: "Changed", Data: []byte(data)})
		is.NoErr(err)
	}
	s, err := tagged.FoldEvents(store.ReadStream(ctx, "acct-1", eventstore.ReadOptions{}), nil)
	is.NoErr(err)
	is.Equal(tagged.Finalize(s), map[string]any{"balance": int64(75), "owner": "bob"})

	// The tagged state round-trips through JSON, as a snapshot would.
	data, err := json.Marshal(s)
	is.NoErr(err)
	back, err := tagged.Parse(data)
	is.NoErr(err)
	s = tagged.Fold(back, map[string]any{"balance": sum(25)})
	is.Equal(tagged.Finalize(s)["balance"], int64(100))

	_, err = store.Append(ctx, "acct-1", eventstore.Any, eventstore.Event{Type: "Broken", Data: []byte(`[1]`)})
	is.NoErr(err)
	_, err = tagged.FoldEvents(store.ReadStream(ctx, "acct-1", eventstore.ReadOptions{}), nil)
	is.True(err != nil) // not a JSON object
}
