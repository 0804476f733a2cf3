// Package tagged is erl-esdb's tagged fold: a fold of map payloads (JSON
// objects) whose fields say how they combine, summed ({"$sum": x}) or
// overwritten ({"$overwrite": x}, or an untagged value). It suits state
// that is a bag of counters and latest values, such as a meter's totals,
// without a Go type per event. For typed state, use
// [eventstore.Decider] and [eventstore.Fold].
package tagged

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"math"

	"github.com/edge-es/eventstore"
)

// Tag says how a field of a map payload combines in a tagged fold.
type Tag int

const (
	// Overwrite replaces the field's value, like an untagged value.
	Overwrite Tag = iota
	// Sum adds the value to the field's running total. Values that are
	// not numbers count as 0.
	Sum
)

// Value is a field value with a [Tag]. In JSON it is an object with one
// key, "$sum" or "$overwrite", holding the value: {"balance": {"$sum": -30}}.
type Value struct {
	Tag   Tag
	Value any
}

// MarshalJSON encodes t as {"$sum": value} or {"$overwrite": value}.
func (t Value) MarshalJSON() ([]byte, error) {
	key := "$overwrite"
	if t.Tag == Sum {
		key = "$sum"
	}
	return json.Marshal(map[string]any{key: t.Value})
}

// Fold is erl-esdb's tagged fold over map payloads: each payload's
// fields are combined into state, left to right. A [Sum] field adds to the
// running total (a number, or 0 for anything else); an [Overwrite] field
// and an untagged value replace. Sums stay tagged in the result, so that a
// fold can go on from it (from a snapshot, say); [Finalize] unwraps them.
// state is not modified.
func Fold(state map[string]any, payloads ...map[string]any) map[string]any {
	out := maps.Clone(state)
	if out == nil {
		out = map[string]any{}
	}
	for _, p := range payloads {
		for k, v := range p {
			out[k] = combine(out[k], v)
		}
	}
	return out
}

// FoldRight is [Fold] with the payloads taken right to left:
// the first payload's overwrites win.
func FoldRight(state map[string]any, payloads ...map[string]any) map[string]any {
	reversed := make([]map[string]any, len(payloads))
	for i, p := range payloads {
		reversed[len(payloads)-1-i] = p
	}
	return Fold(state, reversed...)
}

// FoldEvents folds the JSON object data of a sequence of events
// (oldest first) onto state, reading {"$sum": x} and {"$overwrite": x}
// objects as tags. It stops at the first error, including data that is not
// a JSON object.
func FoldEvents(seq iter.Seq2[eventstore.RecordedEvent, error], state map[string]any) (map[string]any, error) {
	return eventstore.Fold(seq, Fold(state), func(s map[string]any, e eventstore.RecordedEvent) (map[string]any, error) {
		p, err := Parse(e.Data)
		if err != nil {
			return s, fmt.Errorf("event %s@%d: %w", e.StreamID, e.Version, err)
		}
		for k, v := range p {
			s[k] = combine(s[k], v)
		}
		return s, nil
	})
}

// Parse decodes a JSON object, turning {"$sum": x} and {"$overwrite": x}
// values into [Value] ones. Numbers decode as float64. Anything but a JSON
// object is [eventstore.ErrInvalidArgument].
func Parse(data []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: tagged payload is not a JSON object", eventstore.ErrInvalidArgument)
	}
	for k, v := range m {
		if obj, ok := v.(map[string]any); ok && len(obj) == 1 {
			if x, ok := obj["$sum"]; ok {
				m[k] = Value{Sum, x}
			} else if x, ok := obj["$overwrite"]; ok {
				m[k] = Value{Overwrite, x}
			}
		}
	}
	return m, nil
}

// Finalize returns state with every [Value] replaced by its plain
// value.
func Finalize(state map[string]any) map[string]any {
	out := make(map[string]any, len(state))
	for k, v := range state {
		if t, ok := v.(Value); ok {
			v = t.Value
		}
		out[k] = v
	}
	return out
}

func combine(prev, next any) any {
	t, ok := next.(Value)
	if !ok || t.Tag != Sum {
		return next
	}
	if p, ok := prev.(Value); ok {
		prev = p.Value
	}
	return Value{Sum, add(prev, t.Value)}
}

// add sums two values as numbers (anything else counts as 0). A sum of
// integral values is an int64, whatever their Go types; otherwise a
// float64.
func add(a, b any) any {
	ai, aInt, af := number(a)
	bi, bInt, bf := number(b)
	if aInt && bInt {
		return ai + bi
	}
	return af + bf
}

// number reads v as a number: as an int64 when it is integral, and as a
// float64 either way. Non-numbers are 0.
func number(v any) (int64, bool, float64) {
	var f float64
	switch n := v.(type) {
	case int:
		return int64(n), true, float64(n)
	case int8:
		return int64(n), true, float64(n)
	case int16:
		return int64(n), true, float64(n)
	case int32:
		return int64(n), true, float64(n)
	case int64:
		return n, true, float64(n)
	case uint8:
		return int64(n), true, float64(n)
	case uint16:
		return int64(n), true, float64(n)
	case uint32:
		return int64(n), true, float64(n)
	case uint:
		f = float64(n)
		if uint64(n) <= math.MaxInt64 {
			return int64(n), true, f
		}
	case uint64:
		f = float64(n)
		if n <= math.MaxInt64 {
			return int64(n), true, f
		}
	case float32:
		f = float64(n)
	case float64:
		f = n
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return i, true, float64(i)
		}
		f, _ = n.Float64()
	default:
		return 0, true, 0
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int64(f), true, f
	}
	return 0, false, f
}
