package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edge-es/eventstore"
)

// ckptEvents are 100 events of about 3 KiB each: an append of them writes
// about a hundred WAL frames.
func ckptEvents() []eventstore.Event {
	data := []byte(`{"reading":"` + strings.Repeat("x", 3000) + `"}`)
	events := make([]eventstore.Event, 100)
	for i := range events {
		events[i] = eventstore.Event{Type: "Reading", Data: data}
	}
	return events
}

// walFramesOnDisk is how many frames the -wal file of b has room for:
// the most the WAL held since the file was last cut back.
func walFramesOnDisk(t *testing.T, b *Backend) int64 {
	t.Helper()
	return (fileSize(b.path+"-wal") - 32) / (b.space.pageSize + 24)
}

// openCkpt opens a store on a new file and holds its checkpointer with
// hold, set before any append can wake it.
func openCkpt(t *testing.T, hold func(ctx context.Context)) (*eventstore.Store, *Backend) {
	t.Helper()
	b, err := Open(filepath.Join(t.TempDir(), "ckpt.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if hold != nil {
		b.ckpt.hold.Store(&hold)
	}
	s := eventstore.New(b, nil)
	t.Cleanup(func() { s.Close() })
	return s, b
}

// TestCheckpointer_CopiesTheWAL appends, in rounds, until the writer has
// asked the checkpointer for a checkpoint, and lets it run before the next
// round: the -wal file never holds much more than walFrames frames, though
// the rounds write many times that, and the writer's own checkpoint (at
// walSafety times walFrames) never had to run.
func TestCheckpointer_CopiesTheWAL(t *testing.T) {
	woken, proceed := make(chan struct{}), make(chan struct{})
	s, b := openCkpt(t, func(ctx context.Context) {
		select {
		case woken <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case <-proceed:
		case <-ctx.Done():
		}
	})
	ctx := context.Background()
	events := ckptEvents()
	var appends, most int64
	start, _ := b.pagesWritten(ctx)
	for round := range 8 {
		// Append until an append's commit wakes the checkpointer, then
		// wait for it to take the wake: however late it is scheduled,
		// no append comes between.
		for wakes := b.ckpt.wakes.Load(); b.ckpt.wakes.Load() == wakes; {
			if _, err := s.Append(ctx, fmt.Sprintf("r-%d", appends%10), eventstore.Any, events...); err != nil {
				t.Fatal(err)
			}
			appends++
		}
		<-woken
		most = max(most, walFramesOnDisk(t, b))
		runs, ran := b.ckpt.checkpoints()
		proceed <- struct{}{}
		<-ran
		if now, _ := b.ckpt.checkpoints(); now != runs+1 {
			t.Fatalf("round %d: %d checkpoints run, want %d", round, now, runs+1)
		}
	}
	end, _ := b.pagesWritten(ctx)
	written := int64(end - start)
	perAppend := written / appends
	t.Logf("%d appends wrote %d frames (%d each); the -wal file held at most %d", appends, written, perAppend, most)
	if written < 6*walFrames {
		t.Fatalf("the rounds wrote %d frames, want at least %d", written, 6*walFrames)
	}
	// A wake comes at most every-1 commits late, the checkpointer
	// copies all of the WAL, and the next commit starts it again.
	if limit := walFrames + int64(b.ckpt.every)*perAppend + 64; most > limit {
		t.Fatalf("the -wal file held %d frames, want at most %d", most, limit)
	}
}

// TestCheckpointer_NotInTheCommit holds the checkpointer back: the
// appends go on, the writer does not copy the WAL at walFrames frames (its
// file holds more), and its own checkpoint still bounds the WAL at
// walSafety times that.
func TestCheckpointer_NotInTheCommit(t *testing.T) {
	s, b := openCkpt(t, func(ctx context.Context) { <-ctx.Done() }) // until Close
	ctx := context.Background()
	events := ckptEvents()
	start, _ := b.pagesWritten(ctx)
	var appends int64
	written := func() int64 {
		n, err := b.pagesWritten(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return int64(n - start)
	}
	for written() < 2*walFrames {
		if _, err := s.Append(ctx, fmt.Sprintf("n-%d", appends%10), eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
		appends++
	}
	if got := walFramesOnDisk(t, b); got < 2*walFrames {
		t.Fatalf("after %d frames written the -wal file holds %d frames: the writer copied the WAL", written(), got)
	}
	for written() < 3*walSafety*walFrames {
		if _, err := s.Append(ctx, fmt.Sprintf("n-%d", appends%10), eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
		appends++
	}
	perAppend := written() / appends
	if got, limit := walFramesOnDisk(t, b), walSafety*walFrames+perAppend+64; got > limit {
		t.Fatalf("after %d frames written, with the checkpointer held, the -wal file holds %d frames, want at most %d", written(), got, limit)
	}
	if runs, _ := b.ckpt.checkpoints(); runs != 0 {
		t.Fatalf("the held checkpointer ran %d checkpoints", runs)
	}
}

// TestCheckpointer_StartsTheWALAgain lets the checkpointer copy a WAL of
// more than half the writer's own threshold while appends go on: each
// checkpoint copies only the frames up to its start, so, with appends
// close enough together, the WAL would never be all copied and start
// again. The checkpointer copies the last frames with the writer held, and
// the WAL starts again at the next commit.
func TestCheckpointer_StartsTheWALAgain(t *testing.T) {
	woken, proceed := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	s, b := openCkpt(t, func(ctx context.Context) {
		if first.Swap(true) {
			return
		}
		close(woken)
		select {
		case <-proceed:
		case <-ctx.Done():
		}
	})
	ctx := context.Background()
	events := ckptEvents()
	start, _ := b.pagesWritten(ctx)
	held := false
	for i := 0; ; i++ {
		if _, err := s.Append(ctx, fmt.Sprintf("w-%d", i%10), eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
		select {
		case <-woken:
			held = true
		default:
		}
		if n, _ := b.pagesWritten(ctx); held && int64(n-start) >= b.ckpt.safety/2+b.ckpt.frames/4 {
			break
		}
	}
	stop, stopped := make(chan struct{}), make(chan error)
	go func() {
		// At most 200 appends of one event, a thousand frames or so:
		// the WAL stays below the writer's own threshold.
		for i := range 200 {
			select {
			case <-stop:
				stopped <- nil
				return
			default:
			}
			if _, err := s.Append(ctx, fmt.Sprintf("w-%d", i%10), eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
				stopped <- err
				return
			}
		}
		<-stop
		stopped <- nil
	}()
	_, ran := b.ckpt.checkpoints()
	close(proceed)
	<-ran
	close(stop)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	b.ckpt.mu.Lock()
	catchUps := b.ckpt.catchUps
	b.ckpt.mu.Unlock()
	if catchUps == 0 {
		t.Fatal("no checkpoint with the writer held")
	}
	// The first commit after it starts the WAL again: the appender's, or
	// this one.
	if _, err := s.Append(ctx, "w-0", eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
		t.Fatal(err)
	}
	log, _, err := b.side.checkpoint(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if log >= b.ckpt.safety/2 {
		t.Fatalf("the WAL holds %d frames: it did not start again", log)
	}
}

// TestCheckpointer_StopsAtClose closes a store whose checkpointer has run
// and one whose checkpointer is held in a checkpoint: Close waits for it,
// and no goroutine is left. Not parallel: it counts the process's
// goroutines.
func TestCheckpointer_StopsAtClose(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	for _, held := range []bool{false, true} {
		b, err := Open(filepath.Join(t.TempDir(), "stop.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		holding := make(chan struct{})
		if held {
			hold := func(ctx context.Context) {
				close(holding)
				<-ctx.Done()
			}
			b.ckpt.hold.Store(&hold)
		}
		s := eventstore.New(b, nil)
		_, ran := b.ckpt.checkpoints()
		for i := 0; ; i++ {
			if _, err := s.Append(ctx, "s-1", eventstore.Any, ckptEvents()...); err != nil {
				t.Fatal(err)
			}
			if i%4 != 0 {
				continue
			}
			if held {
				select {
				case <-holding:
				default:
					continue
				}
			} else {
				select {
				case <-ran:
				default:
					continue
				}
			}
			break
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-b.ckpt.done:
		default:
			t.Fatalf("held=%v: Close returned before the checkpointer", held)
		}
	}
	waitGoroutines(t, before)
}

// TestCheckpointer_NoneReadOnly: a read-only Backend writes nothing and
// starts no checkpointer.
func TestCheckpointer_NoneReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	b, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	ro, err := Open(path, &Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.ckpt.wake != nil || ro.ckpt.done != nil {
		t.Fatal("a read-only Backend started a checkpointer")
	}
}

// TestCheckpointer_WriterThreshold reads the writer's own automatic
// checkpoint: walSafety times walFrames without a budget, the checkpointer
// waking every walFrames; with a budget, three quarters of the WAL's share
// as before the checkpointer, and no checkpointer.
func TestCheckpointer_WriterThreshold(t *testing.T) {
	const budget = 2 << 20
	share := int64(budget/8-shmBytes) / (4096 + 24) // frames: a small budget's WAL share
	for _, c := range []struct {
		maxBytes             int64
		writer, checkpointer int64
	}{
		{0, walSafety * walFrames, walFrames},
		{budget, share * 3 / 4, 0},
		{1 << 30, walFrames, 0},
	} {
		b, err := Open(filepath.Join(t.TempDir(), "t.db"), &Options{MaxBytes: c.maxBytes})
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if err := b.writer.Get(&got, `PRAGMA wal_autocheckpoint`); err != nil {
			t.Fatal(err)
		}
		if got != c.writer || b.ckpt.frames != c.checkpointer {
			t.Errorf("MaxBytes %d: the writer checkpoints at %d frames, the checkpointer every %d; want %d and %d",
				c.maxBytes, got, b.ckpt.frames, c.writer, c.checkpointer)
		}
		b.Close()
	}
}
