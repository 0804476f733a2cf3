package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

// TestGroupCommit runs 64 appenders at once: they share transactions, and
// every acknowledged append is there.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, mode := range []Synchronous{SyncNormal, SyncFull} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			b, err := Open(filepath.Join(t.TempDir(), "events.db"), &Options{Synchronous: mode})
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			ctx := context.Background()
			const writers, each = 64, 5
			start := make(chan struct{})
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					<-start
					for i := range each {
						if _, err := s.Append(ctx, fmt.Sprintf("g-%d", w), eventstore.Exact(int64(i-1)), eventstore.Event{Type: "E"}); err != nil {
							t.Error(err)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			r, err := s.Verify(ctx)
			is.NoErr(err)
			is.True(r.OK())
			is.Equal(r.Events, int64(writers*each))
			groups := b.groups.Load()
			t.Logf("%s: %d appends in %d transactions", mode, writers*each, groups)
			is.True(groups < writers*each)            // appends shared transactions
			is.Equal(b.group.maxLed.Load(), int64(1)) // each leader ran its own group only
		})
	}
}

// TestGroupCommit_SpoiledGroup mixes into a group an append that fails
// after it has begun writing (its second event's ID is taken): it fails
// alone, and the others are written.
func TestGroupCommit_SpoiledGroup(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	ctx := context.Background()
	taken := eventstore.Event{ID: uuid.New(), Type: "Taken"}
	_, err = s.Append(ctx, "taken-1", eventstore.NoStream, taken)
	is.NoErr(err)

	for round := range 5 {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var badErr error
		for w := range 32 {
			wg.Go(func() {
				<-start
				if w == 7 {
					_, badErr = s.Append(ctx, fmt.Sprintf("bad-%d", round), eventstore.NoStream, eventstore.Event{Type: "Fine"}, taken)
					return
				}
				if _, err := s.Append(ctx, fmt.Sprintf("ok-%d-%d", round, w), eventstore.NoStream, eventstore.Event{Type: "E"}); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		is.True(errors.Is(badErr, eventstore.ErrDuplicateEvent))
		ok, err := s.StreamExists(ctx, fmt.Sprintf("bad-%d", round))
		is.NoErr(err)
		is.True(!ok) // nothing of it was written
	}
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.Equal(r.Events, int64(1+5*31))
}

// hangAfter bounds the waits of these tests. It detects a hang; it is not
// a speed requirement.
const hangAfter = 30 * time.Second

// groupSetup returns a backend on a new file and a store on it.
func groupSetup(t *testing.T, opts *Options) (*Backend, *eventstore.Store) {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	return b, s
}

// holdInsert makes the next event insert wait, inside its transaction and
// holding the writer, until release is called. entered is closed once it
// waits.
func holdInsert(t *testing.T, b *Backend) (entered <-chan struct{}, release func()) {
	in, gate := make(chan struct{}), make(chan struct{})
	var armed atomic.Bool
	armed.Store(true)
	fault := func(query string) error {
		if query == sqlInsertEvent && armed.CompareAndSwap(true, false) {
			close(in)
			<-gate
		}
		return nil
	}
	b.fault.Store(&fault)
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return in, release
}

// appended is the outcome of an Append started by appendAsync.
type appended struct {
	res eventstore.AppendResult
	err error
}

// appendAsync appends one event to a new stream in a goroutine.
func appendAsync(ctx context.Context, s *eventstore.Store, stream string) <-chan appended {
	ch := make(chan appended, 1)
	go func() {
		res, err := s.Append(ctx, stream, eventstore.NoStream, eventstore.Event{Type: "E"})
		ch <- appended{res, err}
	}()
	return ch
}

// outcome waits for an Append started by appendAsync.
func outcome(t *testing.T, ch <-chan appended, what string) appended {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(hangAfter):
		t.Fatalf("%s: the append did not return", what)
		return appended{}
	}
}

// running asserts that an Append started by appendAsync has not returned.
func running(t *testing.T, ch <-chan appended, what string) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("%s returned early: %+v", what, o)
	default:
	}
}

// queued waits until n appends wait in the group's queue.
func queued(t *testing.T, b *Backend, n int) {
	t.Helper()
	for deadline := time.Now().Add(hangAfter); ; time.Sleep(time.Millisecond) {
		b.group.mu.Lock()
		have := len(b.group.queue)
		b.group.mu.Unlock()
		if have >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d appends queued, want %d", have, n)
		}
	}
}

// written reports whether a stream exists.
func written(t *testing.T, s *eventstore.Store, stream string) bool {
	t.Helper()
	ok, err := s.StreamExists(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestGroupCommit_QueuedAppendHonoursContext: appends queued behind a
// leader whose transaction is slow return their context's error at once,
// without waiting for it, and are never written.
func TestGroupCommit_QueuedAppendHonoursContext(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := groupSetup(t, nil)
	ctx := context.Background()
	entered, release := holdInsert(t, b)
	leader := appendAsync(ctx, s, "leader-1")
	<-entered // the leader holds the writer
	kept := appendAsync(ctx, s, "kept-1")
	cctx, cancel := context.WithCancel(ctx)
	cancelled := appendAsync(cctx, s, "cancelled-1")
	queued(t, b, 2)
	dctx, cancelDeadline := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelDeadline()
	late := appendAsync(dctx, s, "late-1")
	cancel()

	is.True(errors.Is(outcome(t, late, "deadline").err, context.DeadlineExceeded))
	is.True(errors.Is(outcome(t, cancelled, "cancel").err, context.Canceled))
	running(t, leader, "the leader") // they did not wait for it
	running(t, kept, "the append without a deadline")
	release()
	is.NoErr(outcome(t, leader, "leader").err)
	is.NoErr(outcome(t, kept, "kept").err)
	is.True(written(t, s, "kept-1"))
	is.True(!written(t, s, "late-1"))
	is.True(!written(t, s, "cancelled-1"))
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.Equal(r.Events, int64(2))
}

// TestGroupCommit_BehindTransactHonoursContext: while a Transact holds the
// writer, appends from other goroutines wait for it, and those whose
// context ends return its error, leader or not, and are never written.
func TestGroupCommit_BehindTransactHonoursContext(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := groupSetup(t, &Options{BusyTimeout: time.Hour})
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	transacted := make(chan error, 1)
	go func() {
		transacted <- s.Transact(ctx, func(ctx context.Context) error {
			close(held)
			<-release
			_, err := s.Append(ctx, "tx-1", eventstore.NoStream, eventstore.Event{Type: "E"})
			return err
		})
	}()
	<-held
	cctx, cancel := context.WithCancel(ctx)
	first := appendAsync(cctx, s, "first-1") // leads: waits for the writer
	queued(t, b, 1)
	kept := appendAsync(ctx, s, "kept-1") // behind it, no deadline
	queued(t, b, 2)
	cancel()
	is.True(errors.Is(outcome(t, first, "the leader").err, context.Canceled))
	dctx2, cancel2 := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel2()
	second := appendAsync(dctx2, s, "second-1") // behind the one that took over
	is.True(errors.Is(outcome(t, second, "behind").err, context.DeadlineExceeded))
	running(t, kept, "the append without a deadline")
	select {
	case err := <-transacted:
		t.Fatalf("the transaction ended early: %v", err)
	default:
	}
	close(release)
	is.NoErr(<-transacted)
	is.NoErr(outcome(t, kept, "kept").err)
	is.True(written(t, s, "kept-1"))
	is.True(written(t, s, "tx-1"))
	is.True(!written(t, s, "first-1"))
	is.True(!written(t, s, "second-1"))
}

// TestGroupCommit_LeaderRunsItsOwnGroup: the append that leads runs the
// group that holds its own append, then hands the lead to the appends
// that queued meanwhile instead of committing for them too.
func TestGroupCommit_LeaderRunsItsOwnGroup(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := groupSetup(t, nil)
	ctx := context.Background()
	entered, release := holdInsert(t, b)
	leader := appendAsync(ctx, s, "leader-1")
	<-entered
	var others []<-chan appended
	for i := range 10 {
		others = append(others, appendAsync(ctx, s, fmt.Sprintf("w-%d", i)))
	}
	queued(t, b, 10)
	release()
	is.NoErr(outcome(t, leader, "leader").err)
	for _, o := range others {
		is.NoErr(outcome(t, o, "queued").err)
	}
	is.Equal(b.group.maxLed.Load(), int64(1))
	is.Equal(b.groups.Load(), int64(2)) // the ten queued ones still shared one
}

// TestGroupCommit_ResultsMatchStorage: each append of a group, written by
// multi-row statements, gets the version and position its last event is
// stored at, and its events are stored in its order, at consecutive
// versions.
func TestGroupCommit_ResultsMatchStorage(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, s := groupSetup(t, nil)
	ctx := context.Background()
	type done struct {
		stream string
		ids    []uuid.UUID
		res    eventstore.AppendResult
	}
	var (
		mu  sync.Mutex
		all []done
	)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			<-start
			for i := range 6 {
				events := make([]eventstore.Event, 1+(w+i)%5)
				d := done{stream: fmt.Sprintf("r-%d", (w+i)%7)}
				for k := range events {
					events[k] = eventstore.Event{ID: uuid.New(), Type: "E"}
					d.ids = append(d.ids, events[k].ID)
				}
				res, err := s.Append(ctx, d.stream, eventstore.Any, events...)
				if err != nil {
					t.Error(err)
					return
				}
				d.res = res
				mu.Lock()
				all = append(all, d)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	is.True(b.groups.Load() < int64(len(all))) // appends shared transactions
	for _, d := range all {
		first := d.res.Version - int64(len(d.ids)) + 1
		var got []uuid.UUID
		var last eventstore.RecordedEvent
		for e, err := range s.ReadStream(ctx, d.stream, eventstore.ReadOptions{From: first, Limit: len(d.ids)}) {
			is.NoErr(err)
			got = append(got, e.ID)
			last = e
		}
		is.Equal(got, d.ids)
		is.Equal(last.Version, d.res.Version)
		is.Equal(last.Position, d.res.Position)
	}
}

// TestGroupCommit_StreamRecords runs one group whose appends meet every
// kind of stream record: new streams, a stream another Backend appended to
// and one it deleted since this Backend last appended to them, a stream
// whose creation was rolled back (its key now another stream's, and it
// created since under another key), and a
// log whose highest positions were purged; and two appends with one
// idempotency key, and one with a key used before. Each append lands at its
// stream's true next version and life, above every position given, with
// the result it reports, and the file verifies (checksums included).
func TestGroupCommit_StreamRecords(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, &Options{BusyTimeout: time.Hour})
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	b2, err := Open(path, nil)
	is.NoErr(err)
	s2 := eventstore.New(b2, nil)
	defer s2.Close()
	e := eventstore.Event{Type: "E"}
	events := func(n int) []eventstore.Event {
		evs := make([]eventstore.Event, n)
		for i := range evs {
			evs[i] = eventstore.Event{ID: uuid.New(), Type: "E", Data: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		}
		return evs
	}

	_, err = s.Append(ctx, "moved-1", eventstore.NoStream, e) // b knows it at 0
	is.NoErr(err)
	_, err = s2.Append(ctx, "moved-1", eventstore.Exact(0), e, e) // now at 2
	is.NoErr(err)
	_, err = s.Append(ctx, "gone-1", eventstore.NoStream, e) // b knows life 0
	is.NoErr(err)
	is.NoErr(s2.DeleteStream(ctx, "gone-1", eventstore.Any))
	rollback := errors.New("rolled back")
	err = s.Transact(ctx, func(ctx context.Context) error {
		if _, err := s.Append(ctx, "rolled-1", eventstore.NoStream, e); err != nil {
			return err
		}
		return rollback
	})
	is.True(errors.Is(err, rollback))
	_, err = s2.Append(ctx, "holder-1", eventstore.NoStream, e) // takes rolled-1's key
	is.NoErr(err)
	_, err = s2.Append(ctx, "rolled-1", eventstore.NoStream, e) // under another key
	is.NoErr(err)
	top, err := s.Append(ctx, "top-1", eventstore.NoStream, events(3)...)
	is.NoErr(err)
	_, err = s.PurgeStream(ctx, "top-1") // the highest positions go
	is.NoErr(err)

	before, err := s.AppendWith(ctx, "moved-1", eventstore.Any, eventstore.AppendOptions{IdempotencyKey: "cmd-0"}, e)
	is.NoErr(err)                                              // moved-1 at 3
	_, err = s2.Append(ctx, "moved-1", eventstore.Exact(3), e) // at 4 (not through b)
	is.NoErr(err)

	// One group: the appends queue while a transaction holds the writer.
	held, release := make(chan struct{}), make(chan struct{})
	transacted := make(chan error, 1)
	go func() {
		transacted <- s.Transact(ctx, func(context.Context) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	type sent struct {
		stream   string
		expected eventstore.ExpectedVersion
		events   []eventstore.Event
		ch       <-chan appended
	}
	var all []*sent
	addWith := func(stream string, expected eventstore.ExpectedVersion, key string, evs []eventstore.Event) *sent {
		a := &sent{stream: stream, expected: expected, events: evs}
		ch := make(chan appended, 1)
		go func() {
			res, err := s.AppendWith(ctx, stream, expected, eventstore.AppendOptions{IdempotencyKey: key}, evs...)
			ch <- appended{res, err}
		}()
		a.ch = ch
		queued(t, b, len(all)+1)
		return a
	}
	add := func(stream string, expected eventstore.ExpectedVersion, evs []eventstore.Event) {
		a := &sent{stream: stream, expected: expected, events: evs}
		ch := make(chan appended, 1)
		go func() {
			res, err := s.Append(ctx, stream, expected, evs...)
			ch <- appended{res, err}
		}()
		a.ch = ch
		all = append(all, a)
		queued(t, b, len(all))
	}
	add("moved-1", eventstore.Exact(4), events(5))
	add("gone-1", eventstore.NoStream, events(2))
	add("rolled-1", eventstore.Exact(0), events(4))
	add("new-1", eventstore.NoStream, events(7))
	add("moved-1", eventstore.Exact(9), events(1))
	add("new-2", eventstore.NoStream, events(3))
	add("gone-1", eventstore.Exact(1), events(6))
	add("top-1", eventstore.Any, events(1))      // purged
	add("new-1", eventstore.Exact(3), events(1)) // conflict: it is at 6
	// Two appends with one idempotency key in the group, and one with a
	// key used before it: the first writes, the others answer its result.
	keyedFirst := addWith("keyed-1", eventstore.Any, "cmd-1", events(2))
	all = append(all, keyedFirst)
	keyedAgain := addWith("keyed-1", eventstore.Any, "cmd-1", events(3))
	all = append(all, keyedAgain)
	keyedBefore := addWith("moved-1", eventstore.Any, "cmd-0", events(1))
	all = append(all, keyedBefore)
	groups := b.groups.Load()
	close(release)
	is.NoErr(<-transacted)

	want := map[string]int64{"moved-1": 10, "gone-1": 7, "rolled-1": 4, "new-1": 6, "new-2": 2, "keyed-1": 1} // after the last append to each
	got := make(map[string]eventstore.AppendResult)
	var keyed eventstore.AppendResult
	for _, a := range all {
		o := outcome(t, a.ch, a.stream)
		switch a {
		case keyedAgain:
			is.NoErr(o.err)
			is.Equal(o.res, keyed) // the first's result; its events not written
			continue
		case keyedBefore:
			is.NoErr(o.err)
			is.Equal(o.res, before)
			continue
		case keyedFirst:
			keyed = o.res
		}
		switch a.stream {
		case "top-1":
			is.True(errors.Is(o.err, eventstore.ErrStreamPurged))
			continue
		case "new-1":
			if a.expected == eventstore.Exact(3) {
				var conflict *eventstore.VersionConflictError
				is.True(errors.As(o.err, &conflict))
				is.Equal(conflict.Actual, int64(6))
				continue
			}
		}
		is.NoErr(o.err)
		is.True(o.res.Position > top.Position) // never a purged position again
		got[a.stream] = o.res
		// The append's events, in its order, ending at its result.
		first := o.res.Version - int64(len(a.events)) + 1
		var i int
		for ev, err := range s.ReadStream(ctx, a.stream, eventstore.ReadOptions{From: first, Limit: len(a.events)}) {
			is.NoErr(err)
			is.Equal(ev.StreamID, a.stream)
			is.Equal(ev.ID, a.events[i].ID)
			is.Equal(ev.Data, a.events[i].Data)
			if i == len(a.events)-1 {
				is.Equal(ev.Position, o.res.Position)
			}
			i++
		}
		is.Equal(i, len(a.events))
	}
	for stream, v := range want {
		is.Equal(got[stream].Version, v)
		version, err := s2.StreamVersion(ctx, stream) // the other Backend reads the file
		is.NoErr(err)
		is.Equal(version, v)
	}
	is.Equal(b.groups.Load(), groups+1) // one group, not one by one
	var n int
	for ev, err := range s.ReadStream(ctx, "holder-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(ev.StreamID, "holder-1")
		n++
	}
	is.Equal(n, 1)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.Equal(r.Problems, nil)
	is.True(r.OK())
}
