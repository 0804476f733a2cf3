package memory

import (
	"context"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// TestVerify_Damage damages the backend's records behind its back, as a
// bug in it could, and checks that Verify reports it. (Damage that memory
// cannot hold, such as an event's category disagreeing with its stream,
// is checked on SQLite.)
func TestVerify_Damage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(b *Backend)
		want   string
	}{
		{"SnapshotOfNoStream", func(b *Backend) {
			b.snapshots["ghost-1"] = lifeSnapshots{life: new(lifeID), list: []eventstore.Snapshot{{StreamID: "ghost-1"}}}
		}, "snapshots: ghost-1: snapshot at version 0, but the stream does not exist"},
		{"SnapshotOfEarlierLife", func(b *Backend) {
			ls := b.snapshots["a-1"]
			ls.life = new(lifeID)
			b.snapshots["a-1"] = ls
		}, "snapshots: a-1: snapshot at version 1 of an earlier life of the stream"},
		{"SnapshotAhead", func(b *Backend) {
			b.snapshots["a-1"].list[0].Version = 7
		}, "snapshots: a-1: snapshot at version 7, but the stream is at 2"},
		{"SnapshotPosition", func(b *Backend) {
			b.snapshots["a-1"].list[0].Position = 3
		}, "snapshots: a-1: snapshot at version 1 records position 3, but a-1@1 is at position 2"},
		{"VersionAtAnotherEvent", func(b *Backend) {
			b.streams["a-1"].positions[2] = 4 // b-1@0
		}, "streams: a-1@2: at position 4, which holds b-1@0"},
		{"EventLeftOutOfItsLife", func(b *Backend) {
			s := b.streams["a-1"]
			s.positions = s.positions[:2]
		}, "streams: a-1@2 at position 3: in the stream's current life, but not one of its versions"},
		{"PurgedButLive", func(b *Backend) {
			b.purged = map[string]bool{"a-1": true}
		}, "streams: a-1: purged, but a live stream"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			b := New()
			s := eventstore.New(b, nil)
			defer s.Close()
			e := eventstore.Event{Type: "E"}
			_, err := s.Append(ctx, "a-1", eventstore.NoStream, e, e, e)
			is.NoErr(err)
			_, err = s.Append(ctx, "b-1", eventstore.NoStream, e)
			is.NoErr(err)
			is.NoErr(s.SaveSnapshot(ctx, "a-1", 1, nil, nil))
			r, err := s.Verify(ctx)
			is.NoErr(err)
			is.True(r.OK()) // healthy before the damage

			b.mu.Lock()
			tc.damage(b)
			b.mu.Unlock()
			r, err = s.Verify(ctx)
			is.NoErr(err)
			is.True(!r.OK())
			if !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
				t.Errorf("no problem says %q; problems:\n%s", tc.want, strings.Join(r.Problems, "\n"))
			}
		})
	}
}
