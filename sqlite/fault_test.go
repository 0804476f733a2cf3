package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// faultSetup returns a store with a few events in it.
func faultSetup(t *testing.T, opts *Options) (*Backend, *eventstore.Store) {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	if _, err := s.Append(context.Background(), "a-1", eventstore.Any, eventstore.Event{Type: "Before"}); err != nil {
		t.Fatal(err)
	}
	return b, s
}

// intact checks that the store holds exactly the events before the fault,
// then that it works again.
func intact(t *testing.T, s *eventstore.Store, stream string) {
	t.Helper()
	is := is.NewRelaxed(t)
	ctx := context.Background()
	n := 0
	for e, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		is.NoErr(err)
		is.Equal(e.Type, "Before") // nothing partial is visible
		n++
	}
	is.Equal(n, 1)
	v, err := s.StreamVersion(ctx, stream)
	is.NoErr(err)
	is.Equal(v, int64(-1))
	res, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.Event{Type: "After"}, eventstore.Event{Type: "After"})
	is.NoErr(err) // the store works once the fault has cleared
	is.Equal(res.Position, int64(3))
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
}

// TestFault_DiskFull makes the file unable to grow, as on a full SD card.
func TestFault_DiskFull(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := faultSetup(t, nil)
	var pages int64
	is.NoErr(b.writer.Get(&pages, "PRAGMA page_count"))
	_, err := b.writer.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages))
	is.NoErr(err)
	big := make([]byte, 64<<10)
	_, err = s.Append(context.Background(), "b-1", eventstore.Any, eventstore.Event{Type: "Big", Data: big}, eventstore.Event{Type: "Big", Data: big})
	var se *msqlite.Error
	is.True(errors.As(err, &se)) // the driver's error reaches the caller...
	is.Equal(se.Code(), sqlite3.SQLITE_FULL)
	is.True(strings.Contains(err.Error(), "append b-1")) // ...with context
	_, err = b.writer.Exec("PRAGMA max_page_count = 4294967294")
	is.NoErr(err)
	intact(t, s, "b-1")
}

// TestFault_Busy holds the write lock from another connection, as another
// process would, past the busy timeout.
func TestFault_Busy(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := faultSetup(t, &Options{BusyTimeout: 50 * time.Millisecond})
	other, err := Open(b.path, nil)
	is.NoErr(err)
	defer other.Close()
	ctx := context.Background()
	conn, err := other.writer.Conn(ctx)
	is.NoErr(err)
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	is.NoErr(err)
	_, err = s.Append(ctx, "b-1", eventstore.Any, eventstore.Event{Type: "Blocked"})
	var se *msqlite.Error
	is.True(errors.As(err, &se))
	is.Equal(se.Code()&0xff, sqlite3.SQLITE_BUSY)
	_, err = conn.ExecContext(ctx, "ROLLBACK")
	is.NoErr(err)
	conn.Close()
	intact(t, s, "b-1")
}

// TestFault_MidAppend fails the second insert of a five-event append (the
// events after the first), then the insert of its event IDs, and then the
// commit of another, as an I/O error would.
func TestFault_MidAppend(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := faultSetup(t, nil)
	ioErr := errors.New("disk I/O error")
	var inserts atomic.Int64
	fault := func(query string) error {
		isInsert := strings.HasPrefix(query, "INSERT INTO events") || strings.HasPrefix(query, "INSERT OR ROLLBACK INTO events")
		if isInsert && inserts.Add(1) == 2 {
			return ioErr
		}
		return nil
	}
	b.fault.Store(&fault)
	events := make([]eventstore.Event, 5)
	for i := range events {
		events[i] = eventstore.Event{Type: "Partial"}
	}
	_, err := s.Append(context.Background(), "b-1", eventstore.NoStream, events...)
	is.True(errors.Is(err, ioErr))
	is.Equal(inserts.Load(), int64(2))
	failIDs := func(query string) error {
		if strings.HasPrefix(query, "INSERT INTO event_ids") {
			return ioErr
		}
		return nil
	}
	b.fault.Store(&failIDs)
	_, err = s.Append(context.Background(), "b-1", eventstore.NoStream, events...)
	is.True(errors.Is(err, ioErr))
	failUpsert := func(query string) error {
		if strings.HasPrefix(query, "INSERT INTO streams") {
			return ioErr
		}
		return nil
	}
	b.fault.Store(&failUpsert) // the last statement before the commit
	_, err = s.Append(context.Background(), "b-1", eventstore.NoStream, events...)
	is.True(errors.Is(err, ioErr))
	b.fault.Store(nil)
	intact(t, s, "b-1")
}

// TestHostileInput passes SQL fragments everywhere a string goes in: they
// are stored and matched as data, never run.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	_, s := faultSetup(t, nil)
	hostile := []string{
		`x'); DROP TABLE events; --`,
		`" OR 1=1 --`,
		`a-1'; DELETE FROM streams WHERE '1'='1`,
		`%_*?[`,
		`Robert'); UPDATE checkpoints SET position = 0; --`,
	}
	for _, h := range hostile {
		_, err := s.AppendWith(ctx, h, eventstore.Any, eventstore.AppendOptions{IdempotencyKey: h}, eventstore.Event{Type: h, Data: []byte(h), Metadata: []byte(h)})
		is.NoErr(err)
		is.NoErr(s.SaveSnapshot(ctx, h, 0, []byte(h), nil))
		got := 0
		for e, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{Streams: []string{h}, Categories: []string{eventstore.Category(h)}, Types: []string{h}}) {
			is.NoErr(err)
			is.Equal(e.StreamID, h)
			got++
		}
		is.Equal(got, 1)
		for info, err := range s.ListStreams(ctx, eventstore.ListOptions{Prefix: h}) {
			is.NoErr(err)
			is.True(strings.HasPrefix(info.ID, h))
		}
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.Equal(r.Events, int64(1+len(hostile))) // every table still there, every row in place
	is.Equal(r.Streams, 1+len(hostile))
}
