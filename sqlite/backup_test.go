package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
		"VersionGap":        {`UPDATE events SET version = 7 WHERE stream = (SELECT sk FROM streams WHERE id = 'a-1') AND version = 2`, "a-1: version 7"},
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

// TestBackup_BadDestination refuses every destination that is not a plain
// file path, or that exists, with ErrInvalidArgument, and writes nothing.
func TestBackup_BadDestination(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	b, err := Open(filepath.Join(dir, "live.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	existing := filepath.Join(dir, "existing.db")
	if err := os.WriteFile(existing, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := dirNames(t, dir)
	for name, dest := range map[string]string{
		"Empty":         "",
		"Memory":        ":memory:",
		"MemoryURI":     "file:backup?mode=memory",
		"SharedMemory":  "file::memory:?cache=shared",
		"FileURI":       "file:" + filepath.Join(dir, "uri.db"),
		"Existing":      existing,
		"Directory":     dir,
		"TrailingSlash": filepath.Join(dir, "new") + "/",
	} {
		err := b.Backup(ctx, dest)
		if !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%s: Backup(%q) = %v, want ErrInvalidArgument", name, dest, err)
		}
	}
	data, err := os.ReadFile(existing)
	if err != nil || string(data) != "mine" {
		t.Errorf("existing destination changed: %q %v", data, err)
	}
	if after := dirNames(t, dir); !slices.Equal(after, before) {
		t.Errorf("files written: %v, were %v", after, before)
	}
}

// TestBackup_FailedLeavesNoDestination fails a backup after the copy is
// written and before it is put in place, the moment a kill would leave
// the most behind: the destination does not exist then, nor after the
// failure, and the temporary copy is removed. A backup whose context is
// done fails the same way.
func TestBackup_FailedLeavesNoDestination(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	b, s := faultSetup(t, nil)
	dest := filepath.Join(dir, "backup.db")
	var seen []string
	fault := func(query string) error {
		if query != faultBackupPlace {
			return nil
		}
		_, err := os.Stat(dest)
		is.True(errors.Is(err, os.ErrNotExist)) // no destination while it is unchecked
		seen = dirNames(t, dir)
		return errors.New("killed")
	}
	b.fault.Store(&fault)
	err := b.Backup(ctx, dest)
	is.True(err != nil)
	is.Equal(len(seen), 1) // the temporary copy, beside the destination
	is.True(seen[0] != "backup.db")
	is.Equal(dirNames(t, dir), []string{}) // and it is gone
	b.fault.Store(nil)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	is.True(errors.Is(b.Backup(cancelled, dest), context.Canceled))
	is.Equal(dirNames(t, dir), []string{})

	is.NoErr(b.Backup(ctx, dest)) // and a backup that completes is whole
	cb, err := Open(dest, &Options{ReadOnly: true})
	is.NoErr(err)
	copied := eventstore.New(cb, nil)
	defer copied.Close()
	r, err := copied.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	live, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Events, live.Events)
}

// TestBackup_ReadOnly backs up a store opened read-only, which leaves no
// file beside the store.
func TestBackup_ReadOnly(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	w, err := Open(path, nil)
	is.NoErr(err)
	_, err = eventstore.New(w, nil).Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	is.NoErr(w.Close())

	r, err := Open(path, &Options{ReadOnly: true})
	is.NoErr(err)
	defer r.Close()
	dest := filepath.Join(t.TempDir(), "backup.db")
	is.NoErr(r.Backup(ctx, dest))
	is.Equal(dirNames(t, filepath.Dir(path)), []string{"events.db"}) // no -wal, no -shm
	is.Equal(dirNames(t, filepath.Dir(dest)), []string{"backup.db"})
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
