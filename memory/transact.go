package memory

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// Transactions work as on SQLite. A transaction holds the backend's one
// writer from its beginning to its end: every write made with another
// context waits for it, and gives up when that context ends. The writes
// made with the transaction's context apply to a copy of the store's data,
// which replaces the committed data when the transaction commits; reads,
// inside the transaction or not, see only committed data, so inside it
// they see the store as it was when it began. Beginning a transaction
// costs a copy of the store's indexes (not of its events): fine for the
// tests and small stores this backend is for.

var _ eventstore.Transactor = (*Backend)(nil)

// writeLock is the backend's one writer. Its zero value is unlocked.
type writeLock struct {
	once sync.Once
	ch   chan struct{}
}

// lock takes the writer, waiting for it until ctx ends. A writer that is
// free is taken even with a context that has ended, so that what cleans up
// after a cancellation (such as releasing a claim) still gets done.
func (l *writeLock) lock(ctx context.Context) error {
	l.once.Do(func() { l.ch = make(chan struct{}, 1) })
	select {
	case l.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *writeLock) unlock() { <-l.ch }

// txKey is the context key of a transaction.
type txKey struct{}

// tx is a transaction that has not ended.
type tx struct {
	b *Backend

	mu   sync.Mutex // fn may write from several goroutines
	work *data      // what the transaction has written so far
	done bool
}

// txOf returns the transaction of b that ctx carries, or nil.
func (b *Backend) txOf(ctx context.Context) *tx {
	if t, ok := ctx.Value(txKey{}).(*tx); ok && t.b == b {
		return t
	}
	return nil
}

// write runs fn on the data a write made with ctx changes: a
// transaction's, or, holding the writer, the committed data. fn must check
// everything before it changes anything, so that a write that fails
// leaves nothing behind.
func (b *Backend) write(ctx context.Context, fn func(d *data) error) error {
	if t := b.txOf(ctx); t != nil {
		if err := b.checkOpen(); err != nil {
			return err
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.done {
			return ErrTxDone
		}
		return fn(t.work)
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	if err := b.writer.lock(ctx); err != nil {
		return err
	}
	defer b.writer.unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	return fn(&b.data)
}

func (b *Backend) checkOpen() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	return nil
}

// Transact implements [eventstore.Transactor]; use it through
// [eventstore.Store.Transact].
func (b *Backend) Transact(ctx context.Context, fn func(ctx context.Context) error) error {
	return b.transact(ctx, fn, nil)
}

// WithCheckpoint implements [eventstore.Transactor].
func (b *Backend) WithCheckpoint(ctx context.Context, key string, position int64, at time.Time, fn func(ctx context.Context) error) error {
	return b.transact(ctx, fn, func(d *data) { d.setCheckpoint(key, position, at, false) })
}

// transact runs fn in a transaction, then finish (when not nil) on its
// data, and commits. Inside a transaction already, it is a savepoint of
// that one.
func (b *Backend) transact(ctx context.Context, fn func(ctx context.Context) error, finish func(d *data)) error {
	if t := b.txOf(ctx); t != nil {
		return t.savepoint(ctx, fn, finish)
	}
	if err := b.checkOpen(); err != nil {
		return err
	}
	if err := b.writer.lock(ctx); err != nil {
		return err
	}
	defer b.writer.unlock()
	b.mu.RLock()
	t := &tx{b: b, work: b.data.fork()}
	b.mu.RUnlock()
	defer t.end() // a panic in fn rolls back too
	if err := fn(context.WithValue(ctx, txKey{}, t)); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if finish != nil {
		finish(t.work)
	}
	if err := ctx.Err(); err != nil {
		return err // the caller gave up: nothing is committed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	b.data = *t.work
	return nil
}

// savepoint runs fn (and finish) in t, and undoes what they wrote when fn
// fails or panics; t goes on.
func (t *tx) savepoint(ctx context.Context, fn func(ctx context.Context) error, finish func(d *data)) error {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return ErrTxDone
	}
	saved := t.work.fork()
	t.mu.Unlock()
	ok := false
	defer func() {
		if !ok {
			t.mu.Lock()
			t.work = saved
			t.mu.Unlock()
		}
	}()
	if err := fn(ctx); err != nil {
		return err
	}
	if finish != nil {
		t.mu.Lock()
		finish(t.work)
		t.mu.Unlock()
	}
	ok = true
	return nil
}

func (t *tx) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done = true
}

// fork returns a copy of d that can be changed without changing d, and
// the other way round. Events are shared: the log and each stream's
// versions are copied only when appended to (their capacity is cut to
// their length), and a purge copies the log before it empties a slot.
func (d *data) fork() *data {
	f := &data{
		log:       d.log[:len(d.log):len(d.log)],
		ids:       maps.Clone(d.ids),
		streams:   make(map[string]*stream, len(d.streams)),
		consumers: make(map[string]*consumerState, len(d.consumers)),
		snapshots: make(map[string]lifeSnapshots, len(d.snapshots)),
		purged:    maps.Clone(d.purged),

		earlier:    make(map[string][]int64, len(d.earlier)),
		retention:  maps.Clone(d.retention),
		categories: maps.Clone(d.categories),
		pruned:     maps.Clone(d.pruned),
		logShared:  true,
	}
	d.logShared = true
	for id, ps := range d.earlier {
		f.earlier[id] = ps[:len(ps):len(ps)]
	}
	if f.ids == nil {
		f.ids = make(map[uuid.UUID]int64)
	}
	for id, s := range d.streams {
		c := *s
		c.positions = s.positions[:len(s.positions):len(s.positions)]
		c.keys = maps.Clone(s.keys)
		f.streams[id] = &c
	}
	for key, c := range d.consumers {
		cc := *c
		cc.processed = maps.Clone(c.processed)
		cc.parked = slices.Clone(c.parked)
		f.consumers[key] = &cc
	}
	for id, ls := range d.snapshots {
		ls.list = slices.Clone(ls.list)
		f.snapshots[id] = ls
	}
	return f
}
