package sqlite

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// maxGroup is the most appends one group commit takes.
const maxGroup = 256

// groupCommit batches concurrent appends into one write transaction: while
// one transaction commits, the appends that arrive queue up, and the next
// one takes them all, up to maxGroup. Each append runs against the state the appends
// before it in the group left, so a version conflict fails that append
// alone; each returns only once the transaction holding it has committed.
// A lone append finds nobody to wait for and runs at once, so it pays
// nothing for this.
//
// The append that finds no group running leads: it waits for the writer,
// takes the queue (itself first) into a transaction, commits, hands every
// append its result, and then hands the lead to the first append that
// queued meanwhile, so that no caller commits for others beyond its own
// group. An append that has not been taken into a transaction yet, leader
// or not, returns as soon as its context ends, and is never written: it
// leaves the queue, and a leader hands the lead on.
type groupCommit struct {
	mu      sync.Mutex
	leading bool            // a leader runs: appends queue behind it
	queue   []*queuedAppend // not taken into a transaction yet, in arrival order

	writer writerLock
	maxLed atomic.Int64 // the most groups one Append has led, for tests
}

// writerLock is the right to the writer connection, taken by every write
// transaction ([Backend.begin]) before it asks database/sql for the
// connection, which then never makes anyone wait: a write can try it
// without waiting, and wait for it with a timer only when it is taken.
type writerLock struct {
	once sync.Once
	held chan struct{} // capacity 1: full while a transaction holds the writer

	// cancel ends the holder's transaction context; only the holder
	// touches it.
	cancel context.CancelFunc
}

func (l *writerLock) ch() chan struct{} {
	l.once.Do(func() { l.held = make(chan struct{}, 1) })
	return l.held
}

type queuedAppend struct {
	ctx context.Context
	req eventstore.AppendRequest
	res eventstore.AppendResult
	err error

	// Set only for an append that queued behind a leader:
	since time.Time     // when it queued
	wake  chan struct{} // closed when it is done or leads

	// Guarded by groupCommit.mu.
	taken bool // in a transaction: its outcome is the commit's
	leads bool // handed the lead
}

func (g *groupCommit) append(ctx context.Context, b *Backend, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	if err := b.checkOpen(); err != nil {
		return eventstore.AppendResult{}, err
	}
	q := &queuedAppend{ctx: ctx, req: req}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	if !g.leading {
		g.leading = true
		g.mu.Unlock()
		return g.lead(b, q)
	}
	q.since, q.wake = time.Now(), make(chan struct{})
	g.mu.Unlock()
	if g.wait(q) {
		return g.lead(b, q)
	}
	return q.res, q.err
}

// wait waits until q is done, in a group another append led, or is handed
// the lead (true), or until its context ends before it was taken into a
// transaction: then it leaves the queue with the context's error.
func (g *groupCommit) wait(q *queuedAppend) (lead bool) {
	select {
	case <-q.wake:
		return q.leads
	case <-q.ctx.Done():
	}
	g.mu.Lock()
	switch {
	case q.leads: // handed the lead as its context ended: lead hands it on
		g.mu.Unlock()
		return true
	case q.taken: // in a transaction already: its outcome is the commit's
		g.mu.Unlock()
		<-q.wake
		return q.leads
	}
	g.remove(q)
	g.mu.Unlock()
	q.err = q.ctx.Err()
	return false
}

// lead runs the group of q, the first append in the queue: it waits for
// the writer, takes the queue into a transaction and commits it, then hands
// the lead on.
func (g *groupCommit) lead(b *Backend, q *queuedAppend) (eventstore.AppendResult, error) {
	tx, err := b.begin(q.ctx, q.since)
	if err != nil {
		g.mu.Lock()
		g.remove(q)
		g.handOver()
		g.mu.Unlock()
		return eventstore.AppendResult{}, err
	}
	g.mu.Lock()
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n] // q first
	g.queue = g.queue[n:]
	for _, t := range batch {
		t.taken = true
	}
	g.mu.Unlock()
	b.commitGroup(tx, batch)
	g.noteLed(1) // its own group only
	g.mu.Lock()
	g.handOver()
	g.mu.Unlock()
	return q.res, q.err
}

// noteLed records that one Append led n groups, for tests.
func (g *groupCommit) noteLed(n int64) {
	for old := g.maxLed.Load(); n > old && !g.maxLed.CompareAndSwap(old, n); old = g.maxLed.Load() {
	}
}

// handOver gives the lead to the first queued append, or ends it when none
// waits. g.mu is held.
func (g *groupCommit) handOver() {
	if len(g.queue) == 0 {
		g.leading = false
		return
	}
	next := g.queue[0]
	next.leads = true
	close(next.wake)
}

// remove takes q out of the queue. g.mu is held.
func (g *groupCommit) remove(q *queuedAppend) {
	if i := slices.Index(g.queue, q); i >= 0 {
		g.queue = slices.Delete(g.queue, i, i+1)
	}
}

// begin starts a write transaction for an append that queued at since (the
// zero time: now); [Backend.release] ends it after its commit or rollback.
// It waits for the writer until ctx ends or, when ctx has no deadline, at
// most BusyTimeout from since: a write made inside a Transact function with
// another context than the function's waits for the transaction that waits
// for it. (A lock held by another process is SQLite's busy timeout's to
// wait for.) The transaction itself does not end with ctx: once a group is
// taken into it, it commits whatever the callers do meanwhile.
func (b *Backend) begin(ctx context.Context, since time.Time) (*sqlx.Tx, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	if err := b.acquire(ctx, since); err != nil {
		return nil, err
	}
	txCtx, stop := ctx, func() bool { return true }
	if ctx.Done() != nil {
		var cancel context.CancelFunc
		txCtx, cancel = context.WithCancel(context.WithoutCancel(ctx))
		b.group.writer.cancel = cancel
		stop = context.AfterFunc(ctx, cancel) // BEGIN may wait for another process
	}
	start := time.Now()
	tx, err := b.writer.BeginTxx(txCtx, nil)
	if !stop() { // ctx ended before, or just as, the transaction began
		if err == nil {
			tx.Rollback()
		}
		b.release()
		return nil, ctx.Err()
	}
	if err != nil {
		b.release()
		return nil, b.waited(fail(ctx, err), "the write transaction", start)
	}
	return tx, nil
}

// acquire takes the writer lock; see begin.
func (b *Backend) acquire(ctx context.Context, since time.Time) error {
	held := b.group.writer.ch()
	select {
	case held <- struct{}{}:
		return nil
	default:
	}
	var expired <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		limit := b.opts.BusyTimeout
		if !since.IsZero() {
			limit -= time.Since(since)
		}
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case held <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-expired:
		return fmt.Errorf("%w: waited %v (a write inside a Transact function must use the function's context)",
			ErrWriterTimeout, b.opts.BusyTimeout)
	}
}

// release gives back the writer that begin took, once its transaction has
// committed or rolled back.
func (b *Backend) release() {
	l := &b.group.writer
	if l.cancel != nil {
		l.cancel()
		l.cancel = nil
	}
	<-l.ch()
	b.space.flush(context.Background())
}

// commitGroup writes batch in tx, commits, releases the writer, and
// reports to each append.
func (b *Backend) commitGroup(tx *sqlx.Tx, batch []*queuedAppend) {
	defer func() {
		for _, q := range batch[1:] { // the first is the leader's own
			close(q.wake)
		}
	}()
	if len(batch) == 1 {
		b.runIn(tx, batch[0]) // no one to share with: no group overhead
		b.release()
		return
	}
	// The group's transaction must not end because one caller gave up.
	// No savepoints: an append whose checks fail has written nothing, and
	// one that fails half-written (a duplicate event ID, an I/O error)
	// spoils the group, which is then rolled back and run one by one.
	ctx := context.WithoutCancel(batch[0].ctx)
	err := func() error {
		for _, q := range batch {
			if err := q.ctx.Err(); err != nil {
				q.err = err // gave up before its turn: not written
				continue
			}
			var dirty bool
			q.res, dirty, q.err = b.appendChecked(ctx, tx, q.req)
			if dirty {
				return errSpoiled
			}
			if q.err != nil {
				q.res = eventstore.AppendResult{}
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", fail(ctx, err))
		}
		b.committed(ctx)
		return nil
	}()
	if err != nil {
		tx.Rollback()
	}
	b.release()
	b.groups.Add(1)
	switch {
	case errors.Is(err, errSpoiled):
		for _, q := range batch {
			q.res, q.err = eventstore.AppendResult{}, q.ctx.Err()
			if q.err == nil {
				b.runAlone(q)
			}
		}
	case err != nil: // the commit failed: none of them is written
		for _, q := range batch {
			q.res = eventstore.AppendResult{}
			if q.err == nil {
				q.err = err
			}
		}
	}
}

// runAlone runs q in a transaction of its own.
func (b *Backend) runAlone(q *queuedAppend) {
	tx, err := b.begin(q.ctx, time.Time{})
	if err != nil {
		q.res, q.err = eventstore.AppendResult{}, err
		return
	}
	defer b.release()
	b.runIn(tx, q)
}

// runIn writes q alone in tx and commits, or rolls back when it fails.
func (b *Backend) runIn(tx *sqlx.Tx, q *queuedAppend) {
	defer b.groups.Add(1)
	q.res, q.err = b.appendIn(q.ctx, tx, q.req)
	if q.err == nil {
		if err := tx.Commit(); err != nil {
			q.err = fmt.Errorf("commit: %w", fail(q.ctx, err))
		} else {
			b.committed(q.ctx)
		}
	}
	if q.err != nil {
		tx.Rollback()
		q.res = eventstore.AppendResult{}
	}
}
