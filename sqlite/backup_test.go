package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// TestVerify_FindsDamage damages a store behind its back, one way at a
// time, and checks that Verify reports it.
func TestVerify_FindsDamage(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		damage string
		want   string
	}{
		"VersionGap":        {`UPDATE events SET version = 7 WHERE stream_id = 'a-1' AND version = 2`, "a-1: version 7"},
		"StreamAhead":       {`UPDATE streams SET version = 9 WHERE id = 'a-1'`, "a-1: at version 9"},
		"SnapshotTooFar":    {`INSERT INTO snapshots (stream_id, life, version, created_at) VALUES ('b-1', 0, 5, 0)`, "b-1: snapshot at version 5"},
		"PositionsReversed": {`UPDATE events SET position = 100 WHERE position = 1`, "a-1: version 1 at position 2"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			_, err = s.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"}, eventstore.Event{Type: "E"}, eventstore.Event{Type: "E"})
			is.NoErr(err)
			_, err = s.Append(ctx, "b-1", eventstore.Any, eventstore.Event{Type: "E"})
			is.NoErr(err)
			r, err := s.Verify(ctx)
			is.NoErr(err)
			is.True(r.OK())

			_, err = b.writer.Exec(c.damage)
			is.NoErr(err)
			r, err = s.Verify(ctx)
			is.NoErr(err)
			is.True(!r.OK())
			if !strings.Contains(strings.Join(r.Problems, "\n"), c.want) {
				t.Errorf("problems %q lack %q", r.Problems, c.want)
			}
		})
	}
}

// TestBackup copies a store while writers go on, and checks the copy.
func TestBackup(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(filepath.Join(dir, "live.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	for i := range 50 {
		_, err := s.Append(ctx, fmt.Sprintf("s-%d", i%5), eventstore.Any, eventstore.Event{Type: "E", Data: []byte(`{"before":true}`)})
		is.NoErr(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var once sync.Once
	halt := func() { once.Do(func() { close(stop); wg.Wait() }) }
	defer halt()
	wg.Go(func() { // writers go on during the backup
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%5), eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	dest := filepath.Join(dir, "backup.db")
	is.NoErr(b.Backup(ctx, dest))
	halt()
	is.True(errors.Is(b.Backup(ctx, dest), eventstore.ErrInvalidArgument)) // never overwrites

	// The copy opens as a store, passes Verify, and holds at least what
	// was there before the backup.
	cb, err := Open(dest, nil)
	is.NoErr(err)
	copied := eventstore.New(cb, nil)
	defer copied.Close()
	r, err := copied.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.Equal(r.Integrity, "ok")
	is.True(r.Events >= 50)
	live, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.Events <= live.Events)
	t.Logf("backup holds %d of %d events", r.Events, live.Events)
}
