package eventstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
)

// Filter selects events of the global log, for ReadAll and subscriptions.
// Its fields combine with AND, the values within one field with OR, and an
// empty field matches every event, so the zero Filter matches everything.
// A field may hold any number of values: the SQLite backend binds up to a
// few hundred of them into its query and matches longer lists in Go, with
// a set, so a filter of 40,000 streams reads the same events as one of
// four.
type Filter struct {
	// Streams are exact stream IDs.
	Streams []string
	// Categories are stream categories, see [Category].
	Categories []string
	// StreamGlob is a [path.Match] pattern on the stream ID, e.g. "order-*".
	// As in path.Match, '*' and '?' do not match '/'.
	StreamGlob string
	// Types are event types.
	Types []string
	// Payload requires that the event's data is a JSON object in which every
	// key of Payload is present and equal to its value. Values are compared
	// as JSON: 5, int64(5) and 5.0 equal the JSON number 5, and maps and
	// slices compare element by element. Events whose data is not a JSON
	// object never match a non-empty Payload.
	Payload map[string]any
	// Match is an arbitrary predicate, applied after every other field.
	Match func(RecordedEvent) bool

	// checked is the matcher of the Store's own copy of a filter it has
	// checked, so that a long-lived subscription does not check its filter
	// again, and rebuild its sets, at every read.
	checked *matcher
}

// IsZero reports whether f matches every event.
func (f Filter) IsZero() bool {
	return len(f.Streams) == 0 && len(f.Categories) == 0 && f.StreamGlob == "" &&
		len(f.Types) == 0 && len(f.Payload) == 0 && f.Match == nil
}

// Matcher checks f and returns a function that reports whether an event
// matches it, with the payload values encoded once and long value lists
// turned into sets, so a filter of any size costs a few lookups per event.
// A malformed filter (an invalid stream ID, an empty category or type, a bad
// glob, a payload value that cannot be encoded as JSON) is an error
// matching [ErrInvalidArgument].
func (f Filter) Matcher() (func(RecordedEvent) bool, error) {
	if f.checked != nil {
		return f.checked.matches, nil
	}
	m, err := f.compile()
	if err != nil {
		return nil, err
	}
	return m.matches, nil
}

// withMatcher checks f and returns a copy that carries its matcher.
func (f Filter) withMatcher() (Filter, error) {
	if f.checked != nil {
		return f, nil
	}
	m, err := f.compile()
	f.checked = m
	return f, err
}

func (f Filter) compile() (*matcher, error) {
	for _, s := range f.Streams {
		if err := ValidateStreamID(s); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
	}
	for _, c := range f.Categories {
		if c == "" {
			return nil, fmt.Errorf("filter: %w", invalidf("empty category"))
		}
	}
	for _, t := range f.Types {
		if err := validateType(t); err != nil {
			return nil, fmt.Errorf("filter: %w", err)
		}
	}
	if f.StreamGlob != "" {
		if _, err := path.Match(f.StreamGlob, ""); err != nil {
			return nil, fmt.Errorf("filter: %w", invalidf("stream glob %q: %v", f.StreamGlob, err))
		}
	}
	m := &matcher{
		streams:    newValueSet(f.Streams),
		categories: newValueSet(f.Categories),
		types:      newValueSet(f.Types),
		glob:       f.StreamGlob,
		match:      f.Match,
	}
	if len(f.Payload) > 0 {
		m.payload = make(map[string]any, len(f.Payload))
		for k, v := range f.Payload {
			want, err := normalizeJSON(v)
			if err != nil {
				return nil, fmt.Errorf("filter: %w", invalidf("payload field %q: %v", k, err))
			}
			m.payload[k] = want
		}
	}
	return m, nil
}

// matcher is a checked [Filter], ready to test events.
type matcher struct {
	streams, categories, types valueSet
	glob                       string
	payload                    map[string]any // normalized
	match                      func(RecordedEvent) bool
}

func (m *matcher) matches(e RecordedEvent) bool {
	if !m.streams.has(e.StreamID) || !m.categories.has(Category(e.StreamID)) || !m.types.has(e.Type) {
		return false
	}
	if m.glob != "" {
		if ok, _ := path.Match(m.glob, e.StreamID); !ok {
			return false
		}
	}
	if len(m.payload) > 0 && !payloadMatches(m.payload, e.Data) {
		return false
	}
	if m.match != nil && !m.match(e) {
		return false
	}
	return true
}

// setFrom is the length from which a valueSet looks values up in a map:
// below it, scanning the list is as fast.
const setFrom = 16

// valueSet is the values of one filter field; the empty set matches every
// value, as an empty field does.
type valueSet struct {
	list []string
	set  map[string]struct{}
}

func newValueSet(vals []string) valueSet {
	if len(vals) < setFrom {
		return valueSet{list: vals}
	}
	set := make(map[string]struct{}, len(vals))
	for _, v := range vals {
		set[v] = struct{}{}
	}
	return valueSet{set: set}
}

func (s valueSet) has(v string) bool {
	if s.set != nil {
		_, ok := s.set[v]
		return ok
	}
	return len(s.list) == 0 || slices.Contains(s.list, v)
}

// payloadMatches reports whether data is a JSON object holding every field
// of want (already normalized) with an equal value.
func payloadMatches(want map[string]any, data []byte) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return false
	}
	for k, w := range want {
		raw, ok := obj[k]
		if !ok {
			return false
		}
		got, err := decodeJSON(raw)
		if err != nil || !jsonEqual(w, got) {
			return false
		}
	}
	return true
}

// normalizeJSON turns a Go value into the form decodeJSON gives: nil, bool,
// string, json.Number, []any or map[string]any.
func normalizeJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return decodeJSON(b)
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// numbersEqual compares two JSON numbers by value: exactly when both are
// integers that fit in 64 bits, as float64 otherwise. (Exact arbitrary
// precision would let one event with a number like 1e999999999 cost
// gigabytes.)
func numbersEqual(a, b json.Number) bool {
	x, errX := strconv.ParseInt(string(a), 10, 64)
	y, errY := strconv.ParseInt(string(b), 10, 64)
	if errX == nil && errY == nil {
		return x == y
	}
	f, errF := strconv.ParseFloat(string(a), 64)
	g, errG := strconv.ParseFloat(string(b), 64)
	return errF == nil && errG == nil && f == g
}

// jsonEqual compares two decoded JSON values; numbers compare by value, so
// 5 equals 5.0.
func jsonEqual(a, b any) bool {
	switch a := a.(type) {
	case json.Number:
		b, ok := b.(json.Number)
		if !ok {
			return false
		}
		if a == b {
			return true
		}
		return numbersEqual(a, b)
	case []any:
		b, ok := b.([]any)
		return ok && slices.EqualFunc(a, b, jsonEqual)
	case map[string]any:
		b, ok := b.(map[string]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for k, av := range a {
			bv, ok := b[k]
			if !ok || !jsonEqual(av, bv) {
				return false
			}
		}
		return true
	default: // nil, bool, string
		return a == b
	}
}
