package eventstoretest

import (
	"errors"
	"slices"
	"testing"

	"github.com/edge-es/eventstore"
)

func testReadStream(t *testing.T, newBackend NewBackend) {
	t.Run("Ranges", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("other-1", eventstore.Any, numbered("Other", 3)...)
		b.appendOK("r-1", eventstore.NoStream, numbered("E", 3)...)
		b.appendOK("other-1", eventstore.Any, numbered("Other", 3)...)
		b.appendOK("r-1", eventstore.Exact(2), numbered("E", 2)...)

		cases := []struct {
			name string
			opts eventstore.ReadOptions
			want []int64
		}{
			{"All", eventstore.ReadOptions{}, []int64{0, 1, 2, 3, 4}},
			{"From", eventstore.ReadOptions{From: 2}, []int64{2, 3, 4}},
			{"FromLast", eventstore.ReadOptions{From: 4}, []int64{4}},
			{"Limit", eventstore.ReadOptions{Limit: 2}, []int64{0, 1}},
			{"FromLimit", eventstore.ReadOptions{From: 1, Limit: 3}, []int64{1, 2, 3}},
			{"LimitPastEnd", eventstore.ReadOptions{From: 3, Limit: 10}, []int64{3, 4}},
			{"PastEnd", eventstore.ReadOptions{From: 5}, nil},
			{"FarPastEnd", eventstore.ReadOptions{From: 1000}, nil},
			{"Backward", eventstore.ReadOptions{Backward: true}, []int64{4, 3, 2, 1, 0}},
			{"BackwardFrom", eventstore.ReadOptions{Backward: true, From: 2}, []int64{2, 1, 0}},
			{"BackwardFromOne", eventstore.ReadOptions{Backward: true, From: 1}, []int64{1, 0}},
			{"BackwardLimit", eventstore.ReadOptions{Backward: true, Limit: 2}, []int64{4, 3}},
			{"BackwardFromLimit", eventstore.ReadOptions{Backward: true, From: 3, Limit: 2}, []int64{3, 2}},
			{"BackwardPastEndStartsAtEnd", eventstore.ReadOptions{Backward: true, From: 99}, []int64{4, 3, 2, 1, 0}},
		}
		for _, c := range cases {
			got := all(b.is, b.store.ReadStream(b.ctx, "r-1", c.opts))
			if !slices.Equal(versions(got), c.want) {
				t.Errorf("%s: versions %v, want %v", c.name, versions(got), c.want)
			}
			for _, e := range got {
				if e.StreamID != "r-1" || e.Type != "E" {
					t.Errorf("%s: read %s %s from r-1", c.name, e.StreamID, e.Type)
				}
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("there-1", eventstore.Any, ev("E"))
		for _, opts := range []eventstore.ReadOptions{{}, {Backward: true}, {From: 3, Limit: 1}} {
			got, err := collect(b.store.ReadStream(b.ctx, "missing-1", opts))
			b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
			b.is.Equal(len(got), 0)
		}
		// ErrStreamNotFound is the only element: the loop sees it once.
		n := 0
		for _, err := range b.store.ReadStream(b.ctx, "missing-1", eventstore.ReadOptions{}) {
			b.is.True(errors.Is(err, eventstore.ErrStreamNotFound))
			n++
		}
		b.is.Equal(n, 1)
	})

	t.Run("LongStreamAcrossPages", func(t *testing.T) {
		b := setup(t, newBackend)
		const n = 2500
		for i := 0; i < n; i += 500 {
			b.appendOK("long-1", eventstore.Any, numbered("E", 500)...)
			b.appendOK("noise-1", eventstore.Any, ev("Noise"))
		}
		forward := all(b.is, b.store.ReadStream(b.ctx, "long-1", eventstore.ReadOptions{}))
		b.is.Equal(len(forward), n)
		backward := all(b.is, b.store.ReadStream(b.ctx, "long-1", eventstore.ReadOptions{Backward: true}))
		b.is.Equal(len(backward), n)
		for i := range n {
			b.is.Equal(forward[i].Version, int64(i))
			b.is.Equal(backward[i].Version, int64(n-1-i))
		}
		from := all(b.is, b.store.ReadStream(b.ctx, "long-1", eventstore.ReadOptions{From: 1999, Limit: 700}))
		b.is.Equal(len(from), 501)
		b.is.Equal(from[0].Version, int64(1999))
	})

	t.Run("EarlyBreak", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("brk-1", eventstore.Any, numbered("E", 1000)...)
		for range 20 { // a leaked cursor or lock would pile up and show
			n := 0
			for _, err := range b.store.ReadStream(b.ctx, "brk-1", eventstore.ReadOptions{}) {
				b.is.NoErr(err)
				if n++; n == 3 {
					break
				}
			}
			b.is.Equal(n, 3)
		}
		// Nothing stays locked: writes and reads go on.
		res := b.appendOK("brk-1", eventstore.Exact(999), ev("After"))
		b.is.Equal(res.Version, int64(1000))
	})

	t.Run("LoopBodyMayWrite", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("src-1", eventstore.Any, numbered("E", 600)...)
		n := 0
		for e, err := range b.store.ReadStream(b.ctx, "src-1", eventstore.ReadOptions{}) {
			b.is.NoErr(err)
			b.appendOK("copy-1", eventstore.Exact(e.Version-1), eventstore.Event{Type: e.Type, Data: e.Data})
			n++
		}
		b.is.Equal(n, 600)
		v, err := b.store.StreamVersion(b.ctx, "copy-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(599))
	})

	t.Run("RangeTwice", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("twice-1", eventstore.Any, numbered("E", 3)...)
		seq := b.store.ReadStream(b.ctx, "twice-1", eventstore.ReadOptions{})
		b.is.Equal(len(all(b.is, seq)), 3)
		b.appendOK("twice-1", eventstore.Any, ev("E"))
		b.is.Equal(len(all(b.is, seq)), 4) // each range reads afresh
	})

	t.Run("StreamVersionAndExists", func(t *testing.T) {
		b := setup(t, newBackend)
		v, err := b.store.StreamVersion(b.ctx, "v-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(-1))
		ok, err := b.store.StreamExists(b.ctx, "v-1")
		b.is.NoErr(err)
		b.is.True(!ok)
		b.appendOK("v-1", eventstore.Any, numbered("E", 4)...)
		v, err = b.store.StreamVersion(b.ctx, "v-1")
		b.is.NoErr(err)
		b.is.Equal(v, int64(3))
		ok, err = b.store.StreamExists(b.ctx, "v-1")
		b.is.NoErr(err)
		b.is.True(ok)
	})
}
