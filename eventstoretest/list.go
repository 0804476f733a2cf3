package eventstoretest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/edge-es/eventstore"
)

func testListStreams(t *testing.T, newBackend NewBackend) {
	t.Run("FilterAndPage", func(t *testing.T) {
		b := setup(t, newBackend)
		for _, s := range []string{"order-2", "account-1", "accountLog-1", "account", "order-10", "account-2+x", "zeta"} {
			b.appendOK(s, eventstore.Any, ev("E"))
		}
		b.appendOK("account-1", eventstore.Any, ev("E"), ev("E"))

		ids := func(opts eventstore.ListOptions) []string {
			var out []string
			for info, err := range b.store.ListStreams(b.ctx, opts) {
				b.is.NoErr(err)
				out = append(out, info.ID)
			}
			return out
		}
		cases := []struct {
			name string
			opts eventstore.ListOptions
			want []string
		}{
			{"All", eventstore.ListOptions{}, []string{"account", "account-1", "account-2+x", "accountLog-1", "order-10", "order-2", "zeta"}},
			{"Prefix", eventstore.ListOptions{Prefix: "account-"}, []string{"account-1", "account-2+x"}},
			{"PrefixWide", eventstore.ListOptions{Prefix: "acc"}, []string{"account", "account-1", "account-2+x", "accountLog-1"}},
			{"Category", eventstore.ListOptions{Category: "account"}, []string{"account", "account-1", "account-2+x"}},
			{"CategoryAndPrefix", eventstore.ListOptions{Category: "account", Prefix: "account-"}, []string{"account-1", "account-2+x"}},
			{"Limit", eventstore.ListOptions{Limit: 2}, []string{"account", "account-1"}},
			{"After", eventstore.ListOptions{After: "account-2+x"}, []string{"accountLog-1", "order-10", "order-2", "zeta"}},
			{"AfterNotStored", eventstore.ListOptions{After: "b"}, []string{"order-10", "order-2", "zeta"}},
			{"AfterLimit", eventstore.ListOptions{After: "account-1", Limit: 2}, []string{"account-2+x", "accountLog-1"}},
			{"AfterWithCategory", eventstore.ListOptions{Category: "order", After: "order-10"}, []string{"order-2"}},
			{"NoMatch", eventstore.ListOptions{Prefix: "nothing"}, nil},
		}
		for _, c := range cases {
			if got := ids(c.opts); !slices.Equal(got, c.want) {
				t.Errorf("%s: %q, want %q", c.name, got, c.want)
			}
		}
	})

	t.Run("Info", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("info-1", eventstore.Any, ev("E"))
		b.appendOK("info-1", eventstore.Any, ev("E"), ev("E"))
		events := all(b.is, b.store.ReadStream(b.ctx, "info-1", eventstore.ReadOptions{}))
		infos := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{}))
		b.is.Equal(len(infos), 1)
		b.is.Equal(infos[0], eventstore.StreamInfo{
			ID:        "info-1",
			Version:   2,
			CreatedAt: events[0].RecordedAt,
			UpdatedAt: events[2].RecordedAt,
		})
	})

	t.Run("ManyPages", func(t *testing.T) {
		b := setup(t, newBackend)
		var want []string
		for i := range 700 {
			id := fmt.Sprintf("many-%04d", i)
			want = append(want, id)
			b.appendOK(id, eventstore.Any, ev("E"))
		}
		// Page through with After and Limit, the way a UI would.
		var got []string
		after := ""
		for {
			page := all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{After: after, Limit: 300}))
			for _, info := range page {
				got = append(got, info.ID)
			}
			if len(page) < 300 {
				break
			}
			after = page[len(page)-1].ID
		}
		b.is.Equal(got, want)
		b.is.Equal(len(all(b.is, b.store.ListStreams(b.ctx, eventstore.ListOptions{}))), 700)
	})
}
