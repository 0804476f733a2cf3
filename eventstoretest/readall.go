package eventstoretest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
)

func testReadAll(t *testing.T, newBackend NewBackend) {
	t.Run("Ranges", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 6 {
			b.appendOK(fmt.Sprintf("s-%d", i%2), eventstore.Any, ev("E"))
		}
		log := b.logPositions()
		cases := []struct {
			name string
			opts eventstore.ReadOptions
			want []int64 // ordinals in the log
		}{
			{"All", eventstore.ReadOptions{}, []int64{1, 2, 3, 4, 5, 6}},
			{"FromOne", eventstore.ReadOptions{From: 1}, []int64{1, 2, 3, 4, 5, 6}},
			{"From", eventstore.ReadOptions{From: log[3]}, []int64{4, 5, 6}},
			{"Limit", eventstore.ReadOptions{Limit: 2}, []int64{1, 2}},
			{"FromLimit", eventstore.ReadOptions{From: log[1], Limit: 3}, []int64{2, 3, 4}},
			{"PastEnd", eventstore.ReadOptions{From: log[5] + 1}, nil},
			{"Backward", eventstore.ReadOptions{Backward: true}, []int64{6, 5, 4, 3, 2, 1}},
			{"BackwardFrom", eventstore.ReadOptions{Backward: true, From: log[2]}, []int64{3, 2, 1}},
			{"BackwardFromOne", eventstore.ReadOptions{Backward: true, From: log[0]}, []int64{1}},
			{"BackwardLimit", eventstore.ReadOptions{Backward: true, Limit: 2}, []int64{6, 5}},
			{"BackwardPastEnd", eventstore.ReadOptions{Backward: true, From: log[5] + 100}, []int64{6, 5, 4, 3, 2, 1}},
		}
		for _, c := range cases {
			got := all(b.is, b.store.ReadAll(b.ctx, c.opts, eventstore.Filter{}))
			if want := at(log, c.want...); !slices.Equal(positions(got), want) {
				t.Errorf("%s: positions %v, want %v", c.name, positions(got), want)
			}
		}
	})

	t.Run("Empty", func(t *testing.T) {
		b := setup(t, newBackend)
		b.is.Equal(len(all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}))), 0)
		b.is.Equal(len(all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{Backward: true}, eventstore.Filter{}))), 0)
	})

	t.Run("ExtremeRanges", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 6 {
			b.appendOK(fmt.Sprintf("s-%d", i%2), eventstore.Any, ev("E"))
		}
		// Each filter matches every event, so that each way a backend
		// reads (whole log, index walks, filtering in code) is tried.
		filters := map[string]eventstore.Filter{
			"None":       {},
			"Stream":     {Streams: []string{"s-0", "s-1"}},
			"Category":   {Categories: []string{"s"}},
			"Type":       {Types: []string{"E"}},
			"Glob":       {StreamGlob: "s-*"},
			"Match":      {Match: func(eventstore.RecordedEvent) bool { return true }},
			"HugeStream": {Streams: hugeList("nobody-", "s-0", "s-1")},
		}
		log := b.logPositions()
		cases := []struct {
			name string
			opts eventstore.ReadOptions
			want []int64 // ordinals in the log
		}{
			{"BackwardFromMax", eventstore.ReadOptions{Backward: true, From: math.MaxInt64}, []int64{6, 5, 4, 3, 2, 1}},
			{"BackwardFromMaxLimit", eventstore.ReadOptions{Backward: true, From: math.MaxInt64, Limit: 2}, []int64{6, 5}},
			{"BackwardFromAlmostMax", eventstore.ReadOptions{Backward: true, From: math.MaxInt64 - 1}, []int64{6, 5, 4, 3, 2, 1}},
			{"BackwardLimitMax", eventstore.ReadOptions{Backward: true, Limit: math.MaxInt}, []int64{6, 5, 4, 3, 2, 1}},
			{"FromMax", eventstore.ReadOptions{From: math.MaxInt64}, nil},
			{"FromMaxLimitMax", eventstore.ReadOptions{From: math.MaxInt64, Limit: math.MaxInt}, nil},
			{"LimitMax", eventstore.ReadOptions{Limit: math.MaxInt}, []int64{1, 2, 3, 4, 5, 6}},
		}
		for fname, f := range filters {
			for _, c := range cases {
				got := all(b.is, b.store.ReadAll(b.ctx, c.opts, f))
				if want := at(log, c.want...); !slices.Equal(positions(got), want) {
					t.Errorf("ReadAll %s, filter %s: positions %v, want %v", c.name, fname, positions(got), want)
				}
			}
		}

		// A stream's versions: the same extremes mean the same.
		streamCases := []struct {
			name string
			opts eventstore.ReadOptions
			want []int64
		}{
			{"BackwardFromMax", eventstore.ReadOptions{Backward: true, From: math.MaxInt64}, []int64{2, 1, 0}},
			{"BackwardFromMaxLimit", eventstore.ReadOptions{Backward: true, From: math.MaxInt64, Limit: 1}, []int64{2}},
			{"BackwardLimitMax", eventstore.ReadOptions{Backward: true, Limit: math.MaxInt}, []int64{2, 1, 0}},
			{"FromMax", eventstore.ReadOptions{From: math.MaxInt64}, nil},
			{"LimitMax", eventstore.ReadOptions{Limit: math.MaxInt}, []int64{0, 1, 2}},
			{"FromMaxLimitMax", eventstore.ReadOptions{From: math.MaxInt64, Limit: math.MaxInt}, nil},
		}
		for _, c := range streamCases {
			got := all(b.is, b.store.ReadStream(b.ctx, "s-0", c.opts))
			if !slices.Equal(versions(got), c.want) {
				t.Errorf("ReadStream %s: versions %v, want %v", c.name, versions(got), c.want)
			}
		}
		listed := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{Limit: math.MaxInt}))
		b.is.Equal(len(listed), 2)
	})

	t.Run("Filters", testFilters(newBackend))

	t.Run("HugeFilters", testHugeFilters(newBackend))

	t.Run("SparseFilterAcrossPages", func(t *testing.T) {
		b := setup(t, newBackend)
		for i := range 8 {
			b.appendOK("bulk-1", eventstore.Any, numbered("Bulk", 300)...)
			b.appendOK(fmt.Sprintf("rare-%d", i), eventstore.Any, ev("Rare", "i", i))
		}
		filters := map[string]eventstore.Filter{
			"Categories": {Categories: []string{"rare"}},
			"Types":      {Types: []string{"Rare"}},
			"Glob":       {StreamGlob: "rare-*"},
			"Payload":    {Payload: map[string]any{"i": 5}},
			"Match":      {Match: func(e eventstore.RecordedEvent) bool { return e.Type == "Rare" }},
		}
		for name, f := range filters {
			got := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, f))
			want := 8
			if name == "Payload" {
				want = 1
			}
			if len(got) != want {
				t.Errorf("%s: %d events, want %d", name, len(got), want)
			}
			back := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{Backward: true, Limit: 3}, f))
			if len(back) != min(3, want) || (len(back) > 0 && back[0].Position != got[len(got)-1].Position) {
				t.Errorf("%s backward: %v", name, streamsOf(back))
			}
		}
	})

	t.Run("IncludesDeletedStreams", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("del-1", eventstore.Any, numbered("E", 2)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "del-1", eventstore.Any))
		b.appendOK("del-1", eventstore.NoStream, ev("Again"))
		got := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{Streams: []string{"del-1"}}))
		b.is.Equal(streamsOf(got), []string{"del-1@0", "del-1@1", "del-1@0"})
	})

	t.Run("EarlyBreakAndLoopBodyWrites", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("x-1", eventstore.Any, numbered("E", 700)...)
		n := 0
		for _, err := range b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{Categories: []string{"x"}}) {
			b.is.NoErr(err)
			b.appendOK("y-1", eventstore.Any, ev("Copy"))
			if n++; n == 400 {
				break
			}
		}
		b.is.Equal(n, 400)
		v, err := b.store.StreamVersion(b.ctx, "y-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(399))
	})

	t.Run("ReadDuringAppendsHasNoGap", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("grow-1", eventstore.Any, numbered("E", 300)...)
		var got []int64
		for e, err := range b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
			b.is.NoErr(err)
			if len(got)%100 == 0 && len(got) < 300 { // at the 1st, 101st and 201st event
				b.appendOK("grow-1", eventstore.Any, numbered("E", 100)...)
			}
			got = append(got, e.Position)
		}
		// Whether a read takes in events committed while it runs is up to
		// the backend; what it yields must be the log from the start, in
		// order, with no gap.
		b.is.True(len(got) >= 300)
		log := b.logPositions()
		b.is.True(len(got) <= len(log))
		b.is.Equal(got, log[:len(got)])
	})
}

func testFilters(newBackend NewBackend) func(t *testing.T) {
	return func(t *testing.T) {
		b := setup(t, newBackend)
		// One event each, in this order (the ordinals 1..n of the log).
		fixture := []struct {
			stream string
			event  eventstore.Event
		}{
			{"account-1", ev("Opened", "owner", "alice", "amount", 0)},
			{"account-2+alice", ev("Opened", "owner", "bob", "amount", 0)},
			{"accountLog-1", ev("Logged", "owner", "alice")},
			{"account", ev("Opened", "owner", "carol")},
			{"account-1", ev("Deposited", "amount", 5, "tags", []string{"a", "b"})},
			{"order-9", ev("Placed", "amount", 5.5, "nested", map[string]any{"k": true})},
			{"order-a/b", ev("Placed", "amount", 7)},
			{"account2-1", ev("Opened", "owner", "dave")},
			{"order-10", eventstore.Event{Type: "Raw", Data: []byte("not json")}},
			{"account-1", ev("Deposited", "amount", 5.0, "note", nil)},
		}
		for _, f := range fixture {
			b.appendOK(f.stream, eventstore.Any, f.event)
		}
		log := b.logPositions()
		cases := []struct {
			name   string
			filter eventstore.Filter
			opts   eventstore.ReadOptions
			want   []int64 // ordinals in the log
		}{
			{"Zero", eventstore.Filter{}, eventstore.ReadOptions{}, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{"Stream", eventstore.Filter{Streams: []string{"account-1"}}, eventstore.ReadOptions{}, []int64{1, 5, 10}},
			{"Streams", eventstore.Filter{Streams: []string{"order-9", "account"}}, eventstore.ReadOptions{}, []int64{4, 6}},
			{"DuplicateStreams", eventstore.Filter{Streams: []string{"account-1", "order-9", "account-1"}}, eventstore.ReadOptions{}, []int64{1, 5, 6, 10}},
			{"StreamWithPlus", eventstore.Filter{Streams: []string{"account-2+alice"}}, eventstore.ReadOptions{}, []int64{2}},
			{"Category", eventstore.Filter{Categories: []string{"account"}}, eventstore.ReadOptions{}, []int64{1, 2, 4, 5, 10}},
			{"CategoryIsNotAPrefix", eventstore.Filter{Categories: []string{"accountLog"}}, eventstore.ReadOptions{}, []int64{3}},
			{"Categories", eventstore.Filter{Categories: []string{"order", "account2"}}, eventstore.ReadOptions{}, []int64{6, 7, 8, 9}},
			{"Glob", eventstore.Filter{StreamGlob: "order-*"}, eventstore.ReadOptions{}, []int64{6, 9}},
			{"GlobClass", eventstore.Filter{StreamGlob: "account-[12]*"}, eventstore.ReadOptions{}, []int64{1, 2, 5, 10}},
			{"GlobQuestion", eventstore.Filter{StreamGlob: "account?-?"}, eventstore.ReadOptions{}, []int64{8}},
			{"GlobNoMeta", eventstore.Filter{StreamGlob: "order-9"}, eventstore.ReadOptions{}, []int64{6}},
			{"Type", eventstore.Filter{Types: []string{"Deposited"}}, eventstore.ReadOptions{}, []int64{5, 10}},
			{"Types", eventstore.Filter{Types: []string{"Placed", "Logged"}}, eventstore.ReadOptions{}, []int64{3, 6, 7}},
			{"PayloadString", eventstore.Filter{Payload: map[string]any{"owner": "alice"}}, eventstore.ReadOptions{}, []int64{1, 3}},
			{"PayloadNumber", eventstore.Filter{Payload: map[string]any{"amount": 5}}, eventstore.ReadOptions{}, []int64{5, 10}},
			{"PayloadFloat", eventstore.Filter{Payload: map[string]any{"amount": 5.5}}, eventstore.ReadOptions{}, []int64{6}},
			{"PayloadSlice", eventstore.Filter{Payload: map[string]any{"tags": []string{"a", "b"}}}, eventstore.ReadOptions{}, []int64{5}},
			{"PayloadMap", eventstore.Filter{Payload: map[string]any{"nested": map[string]bool{"k": true}}}, eventstore.ReadOptions{}, []int64{6}},
			{"PayloadNull", eventstore.Filter{Payload: map[string]any{"note": nil}}, eventstore.ReadOptions{}, []int64{10}},
			{"PayloadAllKeys", eventstore.Filter{Payload: map[string]any{"owner": "alice", "amount": 0}}, eventstore.ReadOptions{}, []int64{1}},
			{"PayloadNoMatch", eventstore.Filter{Payload: map[string]any{"owner": "zed"}}, eventstore.ReadOptions{}, nil},
			{"Match", eventstore.Filter{Match: func(e eventstore.RecordedEvent) bool { return strings.HasSuffix(e.StreamID, "-1") }}, eventstore.ReadOptions{}, []int64{1, 3, 5, 8, 10}},
			{"AndAcrossFields", eventstore.Filter{Categories: []string{"account"}, Types: []string{"Opened"}, Payload: map[string]any{"owner": "bob"}}, eventstore.ReadOptions{}, []int64{2}},
			{"StreamsAndTypes", eventstore.Filter{Streams: []string{"account-1", "order-9"}, Types: []string{"Deposited", "Placed"}}, eventstore.ReadOptions{}, []int64{5, 6, 10}},
			{"GlobAndCategory", eventstore.Filter{StreamGlob: "*-1", Categories: []string{"accountLog", "account2"}}, eventstore.ReadOptions{}, []int64{3, 8}},
			{"MatchAfterOthers", eventstore.Filter{Types: []string{"Opened"}, Match: func(e eventstore.RecordedEvent) bool { return e.Position > log[1] }}, eventstore.ReadOptions{}, []int64{4, 8}},
			{"FromPosition", eventstore.Filter{Categories: []string{"account"}}, eventstore.ReadOptions{From: log[2]}, []int64{4, 5, 10}},
			{"LimitCountsMatches", eventstore.Filter{Categories: []string{"account"}}, eventstore.ReadOptions{Limit: 2}, []int64{1, 2}},
			{"Backward", eventstore.Filter{Types: []string{"Opened"}}, eventstore.ReadOptions{Backward: true}, []int64{8, 4, 2, 1}},
			{"BackwardFromLimit", eventstore.Filter{Categories: []string{"account"}}, eventstore.ReadOptions{Backward: true, From: log[8], Limit: 2}, []int64{5, 4}},
			{"NothingMatches", eventstore.Filter{Streams: []string{"nobody-1"}}, eventstore.ReadOptions{}, nil},
		}
		for _, c := range cases {
			got := all(b.is, b.store.ReadAll(b.ctx, c.opts, c.filter))
			if want := at(log, c.want...); !slices.Equal(positions(got), want) {
				t.Errorf("%s: positions %v, want %v", c.name, positions(got), want)
			}
		}

		t.Run("MalformedFilter", func(t *testing.T) {
			bad := map[string]eventstore.Filter{
				"EmptyStream":    {Streams: []string{""}},
				"ControlStream":  {Streams: []string{"a\x00b"}},
				"EmptyCategory":  {Categories: []string{""}},
				"EmptyType":      {Types: []string{""}},
				"BadGlob":        {StreamGlob: "order-["},
				"UnencodableVal": {Payload: map[string]any{"f": func() {}}},
			}
			for name, f := range bad {
				got, err := collect(b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, f))
				if !errors.Is(err, eventstore.ErrInvalidArgument) || len(got) != 0 {
					t.Errorf("%s: got %d events and %v, want ErrInvalidArgument", name, len(got), err)
				}
			}
		})
	}
}

// hugeValues is how many values the huge filters hold: more than SQLite
// accepts as the variables of one statement (32,766 by default).
const hugeValues = 40_000

// hugeList returns hugeValues values: the given ones, spread over the list
// (first, last, and in between), and made-up ones, prefix plus a number,
// for the rest.
func hugeList(prefix string, real ...string) []string {
	out := make([]string, hugeValues)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	for i, v := range real {
		out[i*(hugeValues-1)/max(len(real)-1, 1)] = v
	}
	return out
}

// testHugeFilters checks that filters with tens of thousands of values read
// the same events as small ones, in ReadAll and in subscriptions.
func testHugeFilters(newBackend NewBackend) func(t *testing.T) {
	return func(t *testing.T) {
		t.Parallel()
		repeated := make([]string, hugeValues)
		for i := range repeated {
			repeated[i] = "order-2"
		}
		cases := []struct {
			name   string
			filter eventstore.Filter
			want   []int64   // ordinals in the fixture's log
			match  [2]string // stream and type of a further event that matches
		}{
			{"Streams", eventstore.Filter{Streams: hugeList("nobody-", "order-1", "cart-1")}, []int64{1, 4, 5}, [2]string{"cart-1", "Any"}},
			{"Types", eventstore.Filter{Types: hugeList("Type", "Shipped", "Closed")}, []int64{3, 5, 6}, [2]string{"new-1", "Closed"}},
			{"Categories", eventstore.Filter{Categories: hugeList("cat", "account", "cart")}, []int64{2, 4, 6}, [2]string{"cart-9", "Any"}},
			{"StreamsAndType", eventstore.Filter{Streams: hugeList("nobody-", "order-1", "order-2", "account-1"), Types: []string{"Shipped"}}, []int64{3, 5}, [2]string{"order-1", "Shipped"}},
			{"AllHuge", eventstore.Filter{
				Streams:    hugeList("nobody-", "order-1", "order-2", "account-2"),
				Categories: hugeList("cat", "order", "account"),
				Types:      hugeList("Type", "Shipped", "Closed"),
			}, []int64{3, 5, 6}, [2]string{"order-2", "Closed"}},
			{"HugeAndGlob", eventstore.Filter{Categories: hugeList("cat", "order", "account"), StreamGlob: "*-1"}, []int64{1, 2, 5}, [2]string{"account-1", "Any"}},
			{"HugeAndPayload", eventstore.Filter{Types: hugeList("Type", "Placed", "Opened"), Payload: map[string]any{"n": 1}}, []int64{4}, [2]string{"x-1", "Opened"}},
			{"Repeated", eventstore.Filter{Streams: repeated}, []int64{3}, [2]string{"order-2", "Any"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				b := setup(t, newBackend)
				b.appendOK("order-1", eventstore.Any, ev("Placed", "n", 0))
				b.appendOK("account-1", eventstore.Any, ev("Opened", "n", 0))
				b.appendOK("order-2", eventstore.Any, ev("Shipped"))
				b.appendOK("cart-1", eventstore.Any, ev("Placed", "n", 1))
				b.appendOK("order-1", eventstore.Any, ev("Shipped"))
				b.appendOK("account-2", eventstore.Any, ev("Closed"))
				want := at(b.logPositions(), c.want...)

				got := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, c.filter))
				b.is.Equal(positions(got), want) // forward
				back := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{Backward: true}, c.filter))
				reversed := slices.Clone(want)
				slices.Reverse(reversed)
				b.is.Equal(positions(back), reversed) // backward
				first := all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{From: want[0] + 1, Limit: 1}, c.filter))
				b.is.Equal(positions(first), want[1:min(2, len(want))]) // from and limit

				// A subscription delivers the same events, then live ones:
				// an event that does not match is skipped, one that does
				// arrives next.
				sub, err := b.store.Subscribe(b.ctx, eventstore.SubscribeOptions{Filter: c.filter})
				b.is.NoErr(err)
				defer sub.Close()
				b.is.Equal(positions(receive(t, sub, len(want))), want) // catch-up
				b.appendOK("zzz-9", eventstore.Any, ev("Nope"))
				live := b.appendOK(c.match[0], eventstore.Any, ev(c.match[1], "n", 1))
				next := receive(t, sub, 1)[0]
				b.is.Equal(next.Position, live.Position) // the matching live event, nothing before it
			})
		}
	}
}
