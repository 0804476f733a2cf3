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
