package eventstore_test

import (
	"errors"
	"testing"

	"github.com/edge-es/eventstore"
)

func TestFilter_Payload(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		payload map[string]any
		data    string
		want    bool
	}{
		{"IntEqualsFloatForm", map[string]any{"n": 5}, `{"n":5.0}`, true},
		{"FloatEqualsIntForm", map[string]any{"n": 5.0}, `{"n":5}`, true},
		{"Exponent", map[string]any{"n": 500}, `{"n":5e2}`, true},
		{"DifferentNumber", map[string]any{"n": 5}, `{"n":6}`, false},
		{"BigIntsExact", map[string]any{"n": int64(9007199254740993)}, `{"n":9007199254740992}`, false},
		{"BigIntsEqual", map[string]any{"n": int64(9007199254740993)}, `{"n":9007199254740993}`, true},
		{"NumberIsNotString", map[string]any{"n": 5}, `{"n":"5"}`, false},
		{"Bool", map[string]any{"ok": true}, `{"ok":true}`, true},
		{"Null", map[string]any{"x": nil}, `{"x":null}`, true},
		{"NullIsNotMissing", map[string]any{"x": nil}, `{}`, false},
		{"Nested", map[string]any{"m": map[string]any{"a": []int{1, 2}}}, `{"m":{"a":[1,2.0]}}`, true},
		{"NestedExtraKey", map[string]any{"m": map[string]any{"a": 1}}, `{"m":{"a":1,"b":2}}`, false},
		{"SliceOrder", map[string]any{"s": []int{1, 2}}, `{"s":[2,1]}`, false},
		{"Struct", map[string]any{"p": struct {
			X int `json:"x"`
		}{3}}, `{"p":{"x":3}}`, true},
		{"NotJSON", map[string]any{"n": 1}, `nope`, false},
		{"NotObject", map[string]any{"n": 1}, `[1]`, false},
		{"Empty", map[string]any{"n": 1}, ``, false},
		{"HugeExponentIsCheap", map[string]any{"n": 1}, `{"n":1e999999999}`, false},
	}
	for _, c := range cases {
		match, err := eventstore.Filter{Payload: c.payload}.Matcher()
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := match(eventstore.RecordedEvent{Data: []byte(c.data)}); got != c.want {
			t.Errorf("%s: match %s = %v, want %v", c.name, c.data, got, c.want)
		}
	}
}

func TestFilter_Malformed(t *testing.T) {
	t.Parallel()
	for name, f := range map[string]eventstore.Filter{
		"Glob":      {StreamGlob: "a[b"},
		"Stream":    {Streams: []string{"ok", "bad\n"}},
		"Category":  {Categories: []string{""}},
		"Type":      {Types: []string{""}},
		"Unencoded": {Payload: map[string]any{"c": make(chan int)}},
	} {
		if _, err := f.Matcher(); !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !(eventstore.Filter{}).IsZero() || (eventstore.Filter{Types: []string{"A"}}).IsZero() {
		t.Error("IsZero")
	}
}
