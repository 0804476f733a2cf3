package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

func TestOpen_PersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")

	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	_, err = s.Append(ctx, "order-1", eventstore.NoStream,
		eventstore.Event{Type: "Placed", Data: []byte(`{"total":12}`), Metadata: []byte(`{"by":"ann"}`)},
		eventstore.Event{Type: "Paid"})
	is.NoErr(err)
	is.NoErr(s.Close())

	b, err = Open(path, nil)
	is.NoErr(err)
	s = eventstore.New(b, nil)
	defer s.Close()
	var got []eventstore.RecordedEvent
	for e, err := range s.ReadStream(ctx, "order-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		got = append(got, e)
	}
	is.Equal(len(got), 2)
	is.Equal(got[0].Type, "Placed")
	is.Equal(string(got[0].Data), `{"total":12}`)
	is.Equal(string(got[0].Metadata), `{"by":"ann"}`)
	is.Equal(got[1].Version, int64(1))
	res, err := s.Append(ctx, "order-1", eventstore.Exact(1), eventstore.Event{Type: "Shipped"})
	is.NoErr(err)
	is.Equal(res, eventstore.AppendResult{Version: 2, Position: 3})
}

func TestOpen_Pragmas(t *testing.T) {
	t.Parallel()
	for _, sync := range []Synchronous{"", SyncNormal, SyncFull} {
		t.Run(string(sync), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b, err := Open(filepath.Join(t.TempDir(), "events.db"), &Options{Synchronous: sync})
			is.NoErr(err)
			defer b.Close()
			var mode string
			var level int
			is.NoErr(b.writer.Get(&mode, "PRAGMA journal_mode"))
			is.Equal(mode, "wal")
			is.NoErr(b.writer.Get(&level, "PRAGMA synchronous"))
			want := 1 // NORMAL, the default
			if sync == SyncFull {
				want = 2
			}
			is.Equal(level, want)
			var queryOnly int
			is.NoErr(b.reader.Get(&queryOnly, "PRAGMA query_only"))
			is.Equal(queryOnly, 1) // readers cannot write
		})
	}
}

func TestOpen_BadArguments(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := map[string]struct {
		path string
		opts *Options
	}{
		"Empty":          {"", nil},
		"Memory":         {":memory:", nil},
		"URI":            {"file:x.db?mode=ro", nil},
		"Synchronous":    {filepath.Join(dir, "a.db"), &Options{Synchronous: "OFF"}},
		"BusyTimeout":    {filepath.Join(dir, "b.db"), &Options{BusyTimeout: -1}},
		"ReadConns":      {filepath.Join(dir, "c.db"), &Options{ReadConns: -2}},
		"MissingDirPath": {filepath.Join(dir, "no", "such", "dir", "d.db"), nil},
	}
	for name, c := range cases {
		b, err := Open(c.path, c.opts)
		if err == nil {
			b.Close()
			t.Errorf("%s: opened", name)
			continue
		}
		if name != "MissingDirPath" && !errors.Is(err, eventstore.ErrInvalidArgument) {
			t.Errorf("%s: %v does not match ErrInvalidArgument", name, err)
		}
	}
	// Refused options create no file.
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("files left behind: %v %v", entries, err)
	}
}

func TestOpen_SchemaVersion(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	v, err := readSchemaVersion(context.Background(), b.writer)
	is.NoErr(err)
	is.Equal(v, SchemaVersion())
	is.True(SchemaVersion() >= 1)

	// A file from a newer release is refused, and left as it was.
	_, err = b.writer.Exec(fmt.Sprintf("UPDATE eventstore_schema SET version = %d", SchemaVersion()+1))
	is.NoErr(err)
	is.NoErr(b.Close())
	_, err = Open(path, nil)
	is.True(errors.Is(err, ErrSchemaTooNew))
}

func TestOpen_PathNeedsNoEscaping(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars&x=1")
	is.NoErr(os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "my events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	_, err = s.Append(context.Background(), "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	is.NoErr(s.Close())
	_, err = os.Stat(path) // the file is where the caller said
	is.NoErr(err)
}

func TestOptions_LogSQL(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), &Options{LogSQL: logger})
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	ctx := context.Background()
	_, err = s.Append(ctx, "log-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	for _, err := range s.ReadStream(ctx, "log-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{"schema migrated", "INSERT INTO events", "FROM streams s JOIN events e", "elapsed="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestTwoOpensOfOneFile runs two backends on one file, as two processes
// would: they serialize their writes and see each other's commits.
func TestTwoOpensOfOneFile(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	b1, err := Open(path, nil)
	is.NoErr(err)
	b2, err := Open(path, nil)
	is.NoErr(err)
	s1, s2 := eventstore.New(b1, nil), eventstore.New(b2, nil)
	defer s1.Close()
	defer s2.Close()

	var wg sync.WaitGroup
	wins := make([]int, 2)
	for i, s := range []*eventstore.Store{s1, s2} {
		wg.Go(func() {
			for range 100 {
				v, err := s.StreamVersion(ctx, "shared-1")
				if err != nil {
					t.Error(err)
					return
				}
				_, err = s.Append(ctx, "shared-1", eventstore.Exact(v), eventstore.Event{Type: "E", Data: fmt.Appendf(nil, `{"by":%d}`, i)})
				switch {
				case err == nil:
					wins[i]++
				case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range []*eventstore.Store{s1, s2} {
		n := 0
		for e, err := range s.ReadStream(ctx, "shared-1", eventstore.ReadOptions{}) {
			is.NoErr(err)
			is.Equal(e.Version, int64(n))
			n++
		}
		is.Equal(n, wins[0]+wins[1]) // both see every winning append, once
	}
}

// TestSubscribe_SeesOtherProcesses appends through one Backend and
// receives through a subscription on another Backend of the same file, as
// with two processes.
func TestSubscribe_SeesOtherProcesses(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shared.db")
	b1, err := Open(path, &Options{WatchInterval: 10 * time.Millisecond})
	is.NoErr(err)
	b2, err := Open(path, nil)
	is.NoErr(err)
	reader, writer := eventstore.New(b1, nil), eventstore.New(b2, nil)
	defer reader.Close()
	defer writer.Close()

	_, err = writer.Append(ctx, "remote-1", eventstore.Any, eventstore.Event{Type: "Before"})
	is.NoErr(err)
	sub, err := reader.Subscribe(ctx, eventstore.SubscribeOptions{})
	is.NoErr(err)
	defer sub.Close()
	for i := range 3 {
		if i > 0 {
			_, err = writer.Append(ctx, "remote-1", eventstore.Any, eventstore.Event{Type: "After"})
			is.NoErr(err)
		}
		select {
		case e := <-sub.Events():
			is.Equal(e.Position, int64(i+1))
		case <-time.After(30 * time.Second): // a hang detector, not a speed test
			t.Fatalf("event %d from the other backend never arrived", i+1)
		}
	}
}

// TestOpen_MigratesOlderFile opens a file written by a release that knew
// only schema version 1, with an event in it.
func TestOpen_MigratesOlderFile(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	old, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	_, err = old.Exec(migrations()[0])
	is.NoErr(err)
	_, err = old.Exec(`PRAGMA user_version = 1`)
	is.NoErr(err)
	_, err = old.Exec(`INSERT INTO events (id, stream_id, life, version, category, type, data, recorded_at)
		VALUES (randomblob(16), 'old-1', 0, 0, 'old', 'Kept', '{}', 0)`)
	is.NoErr(err)
	_, err = old.Exec(`INSERT INTO streams VALUES ('old-1', 'old', 0, 0, 0, 0)`)
	is.NoErr(err)
	is.NoErr(old.Close())

	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	v, err := readSchemaVersion(ctx, b.writer)
	is.NoErr(err)
	is.Equal(v, SchemaVersion())
	for e, err := range s.ReadStream(ctx, "old-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(e.Type, "Kept") // the data came through
	}
	is.NoErr(b.SaveCheckpoint(ctx, "c", 1, time.Now())) // and the new tables work
}

func TestOpen_ReadOnly(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	_, err := Open(path, &Options{ReadOnly: true})
	is.True(err != nil) // no file, and none is created
	_, err = os.Stat(path)
	is.True(os.IsNotExist(err))

	w, err := Open(path, nil)
	is.NoErr(err)
	writer := eventstore.New(w, nil)
	defer writer.Close()
	_, err = writer.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)

	r, err := Open(path, &Options{ReadOnly: true}) // while the writer has it open
	is.NoErr(err)
	reader := eventstore.New(r, nil)
	defer reader.Close()
	v, err := reader.StreamVersion(ctx, "a-1")
	is.NoErr(err)
	is.Equal(v, int64(0))
	_, err = reader.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.True(errors.Is(err, ErrReadOnly))
	_, err = writer.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	v, err = reader.StreamVersion(ctx, "a-1")
	is.NoErr(err)
	is.Equal(v, int64(1)) // it sees the writer's commits
}

// TestOpen_ReadOnlyThenWriter opens a store read-only while no process has
// it open, which reads it as immutable, then starts a writer: the
// read-only store's reads and subscriptions follow the writer's commits.
func TestOpen_ReadOnlyThenWriter(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	w, err := Open(path, nil)
	is.NoErr(err)
	_, err = eventstore.New(w, nil).Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "Before"})
	is.NoErr(err)
	is.NoErr(w.Close())

	r, err := Open(path, &Options{ReadOnly: true, WatchInterval: 10 * time.Millisecond})
	is.NoErr(err)
	reader := eventstore.New(r, nil)
	defer reader.Close()
	v, err := reader.StreamVersion(ctx, "a-1")
	is.NoErr(err)
	is.Equal(v, int64(0))
	is.Equal(dirNames(t, dir), []string{"events.db"}) // read as immutable: nothing created
	sub, err := reader.Subscribe(ctx, eventstore.SubscribeOptions{})
	is.NoErr(err)
	defer sub.Close()
	select {
	case e := <-sub.Events():
		is.Equal(e.Type, "Before")
	case <-time.After(30 * time.Second): // a hang detector, not a speed test
		t.Fatal("the existing event never arrived")
	}

	w, err = Open(path, nil)
	is.NoErr(err)
	writer := eventstore.New(w, nil)
	defer writer.Close()
	_, err = writer.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "After"})
	is.NoErr(err)
	select {
	case e := <-sub.Events():
		is.Equal(e.Type, "After")
		is.Equal(e.Position, int64(2))
	case <-time.After(30 * time.Second):
		t.Fatal("the writer's event never reached the read-only store's subscription")
	}
	v, err = reader.StreamVersion(ctx, "a-1")
	is.NoErr(err)
	is.Equal(v, int64(1))
}
