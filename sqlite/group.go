package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
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
	mu        sync.Mutex
	leading   bool            // a leader runs: appends queue behind it
	queue     []*queuedAppend // not taken into a transaction yet, in arrival order
	lastGroup int             // how many appends the last group took

	// batch is the leader's: the appends its group took out of queue.
	// Both keep their arrays from group to group, so that an append does
	// not allocate them again.
	batch []*queuedAppend

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

	// Set by the group's leader, in writeGroup:
	first     int           // its first row in the group's
	wrote     []eventRow    // the events it wrote; nil when it wrote none
	positions []int64       // theirs
	sameAs    *queuedAppend // an earlier append of the group with its idempotency key
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
		crowd := g.lastGroup > 1
		g.mu.Unlock()
		if crowd {
			g.gather()
		}
		return g.lead(b, q)
	}
	q.since, q.wake = time.Now(), make(chan struct{})
	g.mu.Unlock()
	if g.wait(q) {
		g.gather()
		return g.lead(b, q)
	}
	return q.res, q.err
}

// gather lets the appends that are about to queue do so before a leader
// takes the queue. A commit wakes its whole group at once, and the
// appenders that append again find either the lead handed to one that
// queued meanwhile or nobody leading: the first to come back would then
// run alone, and the rest wait for it and then for their own group. So a
// leader under concurrent appends (handed the lead, or after a group of
// more than one) yields the processor once, and whoever is ready to run
// queues first; a lone appender does not yield, and pays nothing.
func (g *groupCommit) gather() { runtime.Gosched() }

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
	batch := append(g.batch[:0], g.queue[:n]...) // q first
	rest := copy(g.queue, g.queue[n:])
	clear(g.queue[rest:])
	g.queue = g.queue[:rest]
	g.lastGroup = n
	for _, t := range batch {
		t.taken = true
	}
	g.mu.Unlock()
	b.commitGroup(tx, batch)
	// The lead is still q's: no other leader touches g.batch yet.
	clear(batch)
	g.batch = batch[:0]
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
	if !b.keepTrust {
		b.known.distrust()
	}
	b.keepTrust = false
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
	if len(batch) == 1 && batch[0].req.IdempotencyKey == "" {
		b.runIn(tx, batch[0]) // no one to share with: no group overhead
		b.release()
		return
	}
	// The group's transaction must not end because one caller gave up.
	// No savepoints: an append whose checks fail has written nothing, and
	// a statement that fails (a duplicate event ID, an I/O error) spoils
	// the group, which is then rolled back and run one by one.
	ctx := context.WithoutCancel(batch[0].ctx)
	touched, err := b.writeGroup(ctx, tx, batch)
	if err == nil {
		if err = tx.Commit(); err != nil {
			err = fmt.Errorf("commit: %w", fail(ctx, err))
		}
	}
	if err != nil {
		tx.Rollback()
	} else {
		for _, st := range touched {
			b.known.put(st.id, st.streamRecord)
		}
		b.keepTrust = true
		b.reportGroup(batch)
		b.committed(ctx)
	}
	b.release()
	b.groups.Add(1)
	switch {
	case errors.Is(err, errSpoiled):
		for _, q := range batch {
			q.res, q.err, q.wrote = eventstore.AppendResult{}, q.ctx.Err(), nil
			if q.err == nil {
				b.runAlone(q)
			}
		}
	case err != nil: // the commit failed: none of them is written
		for _, q := range batch {
			q.res, q.wrote = eventstore.AppendResult{}, nil
			if q.err == nil {
				q.err = err
			}
		}
	}
}

// writeGroup writes the appends of batch in tx, in order, each checked
// against the state the appends before it left: one append's failed check
// fails it alone. It reads the records of all their streams with one
// statement, creates the records of the streams they start with two, and
// writes their events with a few multi-row statements; the record of a
// stream that exists is not written (its version is its events'). It
// returns the streams it appended to. An error of a statement that writes
// is errSpoiled; the caller then rolls the group back.
func (b *Backend) writeGroup(ctx context.Context, tx *sqlx.Tx, batch []*queuedAppend) ([]*streamRow, error) {
	var streams []string
	seen := make(map[string]bool, len(batch))
	for _, q := range batch {
		if !seen[q.req.Stream] {
			seen[q.req.Stream] = true
			streams = append(streams, q.req.Stream)
		}
	}
	states, err := b.groupStreams(ctx, tx, streams)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSpoiled, err)
	}
	type keyOf struct{ stream, key string }
	keys := make(map[keyOf]*queuedAppend) // idempotency keys the group writes
	var rows []eventRow
	var touched, started []*streamRow
	for _, q := range batch {
		if err := q.ctx.Err(); err != nil {
			q.err = err // gave up before its turn: not written
			continue
		}
		req := &q.req
		if req.IdempotencyKey != "" {
			if earlier := keys[keyOf{req.Stream, req.IdempotencyKey}]; earlier != nil {
				q.sameAs = earlier // done before, in this group
				continue
			}
			err := b.stmt(ctx, tx, sqlIdempotencyKey).QueryRowxContext(ctx, req.Stream, req.IdempotencyKey).Scan(&q.res.Version, &q.res.Position)
			if err == nil {
				continue // done before: the earlier result, nothing written
			}
			q.res = eventstore.AppendResult{}
			if !errors.Is(err, sql.ErrNoRows) {
				q.err = fail(ctx, err)
				continue
			}
		}
		st := states[req.Stream]
		if st == nil {
			st = &streamRow{id: req.Stream, streamRecord: streamRecord{version: -1}}
			states[req.Stream] = st
		}
		if st.state == tombstone {
			q.err = eventstore.ErrStreamPurged
			continue
		}
		if err := req.Expected.Check(req.Stream, st.version); err != nil {
			q.err = err
			continue
		}
		if !st.touched {
			st.touched = true
			touched = append(touched, st)
		}
		if st.sk == 0 || st.state < 0 { // the first append of a life
			if !st.start {
				st.start, st.at = true, req.Time.UnixNano()
				started = append(started, st)
			}
			st.state = 0
		}
		q.first = len(rows)
		for i := range req.Events {
			st.version++
			rows = append(rows, eventRow{req: req, i: i, st: st, life: st.life, version: st.version})
		}
		q.res.Version = st.version
		q.wrote = rows[q.first:]
		if req.IdempotencyKey != "" {
			keys[keyOf{req.Stream, req.IdempotencyKey}] = q
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	if err := b.startStreams(ctx, tx, started); err != nil {
		return nil, fmt.Errorf("%w: %w", errSpoiled, err)
	}
	positions, err := b.insertGroupEvents(ctx, tx, rows)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSpoiled, err)
	}
	err = b.insertIDs(ctx, tx, len(rows), func(i int) (*uuid.UUID, int64) {
		return &rows[i].req.Events[rows[i].i].ID, positions[i]
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSpoiled, err)
	}
	for _, q := range batch {
		if q.wrote != nil {
			q.positions = positions[q.first : q.first+len(q.wrote)]
			q.res.Position = q.positions[len(q.positions)-1]
		}
	}
	for _, q := range batch {
		switch {
		case q.sameAs != nil:
			q.res = q.sameAs.res
		case q.wrote != nil && q.req.IdempotencyKey != "":
			if _, err := b.exec(ctx, tx, `INSERT INTO idempotency_keys (stream_id, key, version, position) VALUES (?, ?, ?, ?)`,
				q.req.Stream, q.req.IdempotencyKey, q.res.Version, q.res.Position); err != nil {
				return nil, fmt.Errorf("%w: %w", errSpoiled, err)
			}
		}
	}
	return touched, nil
}

// reportGroup reports the events a committed group wrote, in position
// order, to the [eventstore.CommitReporter] function, if one is set.
func (b *Backend) reportGroup(batch []*queuedAppend) {
	report := b.report.Load()
	if report == nil {
		return
	}
	var n int
	for _, q := range batch {
		n += len(q.wrote)
	}
	if n == 0 {
		return
	}
	events := make([]eventstore.RecordedEvent, 0, n)
	for _, q := range batch {
		for k, r := range q.wrote {
			events = append(events, recorded(r.req, r.i, r.version, q.positions[k]))
		}
	}
	(*report)(eventstore.Commit{Events: events})
}

// recorded is event i of req as stored at version and position, with
// copies of its payloads: the caller of Append may reuse its buffers.
func recorded(req *eventstore.AppendRequest, i int, version, position int64) eventstore.RecordedEvent {
	e := &req.Events[i]
	return eventstore.RecordedEvent{
		ID:         e.ID,
		StreamID:   req.Stream,
		Version:    version,
		Position:   position,
		Type:       e.Type,
		Data:       bytes.Clone(nullIfEmpty(e.Data)),
		Metadata:   bytes.Clone(nullIfEmpty(e.Metadata)),
		RecordedAt: req.Time,
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
		}
	}
	if q.err != nil {
		tx.Rollback()
		q.res = eventstore.AppendResult{}
		return
	}
	b.keepTrust = true // its stream's record was checked in SQL
	b.reportOne(q)
	b.committed(q.ctx)
}

// reportOne reports the commit of q, run alone, to the
// [eventstore.CommitReporter] function, if one is set. An append's events
// have consecutive positions (see insertEvents), ending at q.res.Position.
// Whether an append with an idempotency key wrote or found its key cannot
// be told from its result: for it, the report says only that something
// may have been committed.
func (b *Backend) reportOne(q *queuedAppend) {
	report := b.report.Load()
	if report == nil {
		return
	}
	if q.req.IdempotencyKey != "" {
		(*report)(eventstore.Commit{})
		return
	}
	n := int64(len(q.req.Events))
	events := make([]eventstore.RecordedEvent, n)
	for i := range events {
		k := int64(i) - n + 1
		events[i] = recorded(&q.req, i, q.res.Version+k, q.res.Position+k)
	}
	(*report)(eventstore.Commit{Events: events})
}

var _ eventstore.CommitReporter = (*Backend)(nil)

// ReportCommits implements [eventstore.CommitReporter]: it reports the
// commits of appends made outside a transaction of [Backend.Transact] or
// an exactly-once consumer, a group commit as one commit, from the
// appending goroutine that committed it, while it still holds the writer.
func (b *Backend) ReportCommits(report func(eventstore.Commit)) {
	if report == nil {
		b.report.Store(nil)
		return
	}
	b.report.Store(&report)
}
