package sqlite

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"
)

// checkpointer copies the WAL into the database file off the commits'
// path: a goroutine of the Backend's own, started at [Open] for a writable
// Backend and stopped at Close, runs a PASSIVE checkpoint on the side
// connection each time the writer has written frames pages since it last
// woke it. A PASSIVE checkpoint does not take the writer's lock, so
// appends go on while it copies; once all of the WAL is copied, the next
// commit starts the WAL again from its beginning. A checkpoint copies the
// frames up to its start, so under appends that follow each other closely
// none finds all of it copied: see catchUp.
//
// The writer keeps SQLite's own automatic checkpoint, at safety frames
// (more than frames), as the bound of the WAL when the checkpointer falls
// behind: the commit that reaches it copies what is left.
type checkpointer struct {
	frames int64         // pages the writer writes between two wakes; 0: none runs
	safety int64         // the writer's own wal_autocheckpoint
	wake   chan struct{} // capacity 1: a checkpoint is asked for
	stop   context.CancelFunc
	done   chan struct{} // closed when the goroutine has returned

	// Only the writer's holder touches these: the writer's count of
	// pages written (SQLITE_DBSTATUS_CACHE_WRITE) at the last wake, how
	// many commits apart it reads it, and the commits since it last did.
	written int
	every   int
	commits int

	// hold, set only by tests, runs before each checkpoint, on the
	// checkpointer's goroutine, with a context that ends at Close.
	hold atomic.Pointer[func(ctx context.Context)]
	// wakes counts the wakes the writer sent, for tests.
	wakes atomic.Int64

	// copying is held by each checkpoint the Backend runs, its own or
	// another's (ReclaimSpace, a -wal file cut back): SQLite runs one
	// at a time and fails the others, without waiting. With the writer
	// held too, the writer is taken first.
	copying sync.Mutex

	mu       sync.Mutex
	runs     int64         // checkpoints run, for tests
	catchUps int64         // of them, those that held the writer
	next     chan struct{} // closed at the next run, for tests
}

// checkEveryFrames: the writer reads its count of pages written once
// every frames/checkEveryFrames commits, at most 8 (7 at the default
// threshold: a wake comes some 30 frames late after single-event appends).
const checkEveryFrames = 128

// startCheckpointer starts the goroutine of b's checkpointer.
func (b *Backend) startCheckpointer() {
	c := &b.ckpt
	if c.frames == 0 {
		return
	}
	c.every = int(min(max(c.frames/checkEveryFrames, 1), 8))
	ctx, stop := context.WithCancel(context.Background())
	c.wake, c.stop, c.done = make(chan struct{}, 1), stop, make(chan struct{})
	go c.run(ctx, b)
}

// stopCheckpointer stops the goroutine of b's checkpointer and waits for
// it to return; a checkpoint under way is interrupted.
func (b *Backend) stopCheckpointer() {
	if c := &b.ckpt; c.stop != nil {
		c.stop()
		<-c.done
	}
}

func (c *checkpointer) run(ctx context.Context, b *Backend) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.wake:
		}
		if hold := c.hold.Load(); hold != nil {
			(*hold)(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		// Best effort: when it fails (the disk is full, a read keeps
		// it from copying), the next wake tries again, and the
		// writer's own checkpoint bounds the WAL meanwhile.
		if log, _, err := c.passive(ctx, b); err == nil && log >= c.safety/2 {
			c.catchUp(ctx, b, log)
		}
		c.mu.Lock()
		c.runs++
		if c.next != nil {
			close(c.next)
			c.next = nil
		}
		c.mu.Unlock()
	}
}

// catchUpFrames is how few frames the commits must have added during a
// checkpoint for the checkpointer to copy the rest with the writer held.
const catchUpFrames = 32

// catchUp lets the WAL start again once a checkpoint found it at log
// frames, half the writer's own threshold or more: commits kept adding
// frames while the checkpoints copied it. It copies what they added
// meanwhile, again while that shrinks (three times at most), then the
// last few with the writer held, so that the next commit starts the WAL
// from its beginning. The appends wait for that last copy, a millisecond
// or so, where the writer's own checkpoint would copy a thousand frames
// or more in a commit.
func (c *checkpointer) catchUp(ctx context.Context, b *Backend, log int64) {
	for range 3 {
		next, _, err := c.passive(ctx, b)
		if err != nil || next < log { // started again, or another checkpoint runs
			return
		}
		added := next - log
		log = next
		if added <= catchUpFrames {
			break
		}
	}
	if b.acquire(ctx, time.Time{}) != nil {
		return
	}
	defer b.release()
	if _, _, err := c.passive(ctx, b); err == nil {
		c.mu.Lock()
		c.catchUps++
		c.mu.Unlock()
	}
}

// passive runs a PASSIVE checkpoint on the side connection.
func (c *checkpointer) passive(ctx context.Context, b *Backend) (log, copied int64, err error) {
	c.copying.Lock()
	defer c.copying.Unlock()
	return b.side.checkpoint(ctx, b)
}

// copy runs checkpoint, a checkpoint of the Backend's other than the
// checkpointer's, with the writer held: after it the checkpointer has
// nothing to copy, and is not woken until the writer has written frames
// pages more, so that a checkpoint of another connection's right after
// (the command's, the sqlite3 shell's) does not find it running.
func (c *checkpointer) copy(ctx context.Context, b *Backend, checkpoint func() error) error {
	c.copying.Lock()
	defer c.copying.Unlock()
	err := checkpoint()
	if c.wake != nil {
		select {
		case <-c.wake:
		default:
		}
		if n, err := b.pagesWritten(ctx); err == nil {
			c.written, c.commits = n, 0
		}
	}
	return err
}

// wrote wakes the checkpointer when the writer has written frames pages
// since it last did. It runs after each commit, with the writer held. The
// count is a counter of the writer connection's, whose read costs under a
// microsecond and three allocations (a percent of a single-event append):
// it is read every c.every commits, so a wake may come c.every-1 commits
// late.
func (b *Backend) wrote(ctx context.Context) {
	c := &b.ckpt
	if c.wake == nil {
		return
	}
	if c.commits++; c.commits < c.every {
		return
	}
	c.commits = 0
	n, err := b.pagesWritten(ctx)
	if err != nil {
		return
	}
	if n < c.written { // a connection the pool opened again
		c.written = n
	}
	if int64(n-c.written) < c.frames {
		return
	}
	c.written = n
	select {
	case c.wake <- struct{}{}:
		c.wakes.Add(1)
	default: // one is asked for already
	}
}

// pagesWritten returns how many pages the writer connection has written
// since it was opened, to the WAL: one frame each. The writer must be
// held.
func (b *Backend) pagesWritten(ctx context.Context) (int, error) {
	conn, err := b.writer.Conn(context.WithoutCancel(ctx))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var n int
	err = conn.Raw(func(dc any) error {
		st, ok := dc.(msqlite.DBStatus)
		if !ok {
			return errors.ErrUnsupported
		}
		var err error
		n, _, err = st.Status(msqlite.DBStatusCacheWrite, false)
		return err
	})
	return n, err
}

// checkpoints returns, for tests, how many checkpoints the checkpointer
// has run and a channel closed when it has run one more.
func (c *checkpointer) checkpoints() (int64, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = make(chan struct{})
	}
	return c.runs, c.next
}

// checkpoint runs a PASSIVE checkpoint on c. It returns how many frames the
// WAL holds and how many of them are copied into the database file.
func (c *sideConn) checkpoint(ctx context.Context, b *Backend) (log, copied int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.open(b); err != nil {
		return 0, 0, err
	}
	var busy int
	err = c.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied)
	return log, copied, fail(ctx, err)
}
