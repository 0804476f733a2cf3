package eventstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// txKey marks a context whose writes belong to a transaction that has not
// committed yet.
type txKey struct{}

// pendingTx collects the last position appended in one level of a
// transaction: the outermost, or a nested one (a savepoint).
type pendingTx struct {
	mu   sync.Mutex
	last int64
}

func (p *pendingTx) add(position int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = max(p.last, position)
}

// committed reports an append that ended at position: to subscriptions at
// once, or, inside a transaction, once it commits. Waking them earlier
// would let a subscription pass over positions that are not visible yet.
// A backend that reports its commits has handed this one to the
// subscriptions already (or had none to hand it to, and then a new
// subscription's first read sees it): waking them too would only make
// them read what they have.
func (s *Store) committed(ctx context.Context, position int64) {
	if p, ok := ctx.Value(txKey{}).(*pendingTx); ok {
		p.add(position)
		return
	}
	if s.caps.commits != nil {
		s.hub.advance(position)
		return
	}
	s.hub.notify(position)
}

// inTx runs fn through run (a backend transaction) with a context that
// defers notifications, and notifies once it has committed. Each level of
// nesting collects its own positions and hands them to the level above
// only when it succeeds: a level that fails is rolled back, and the
// positions it had taken are given to later appends, so announcing them
// would tell subscriptions of events that do not exist.
func (s *Store) inTx(ctx context.Context, run func(ctx context.Context) error) error {
	outer, nested := ctx.Value(txKey{}).(*pendingTx)
	p := &pendingTx{}
	if err := run(context.WithValue(ctx, txKey{}, p)); err != nil {
		return err
	}
	switch {
	case p.last == 0:
	case nested:
		outer.add(p.last) // the outermost commit notifies
	default:
		s.hub.notify(p.last)
	}
	return nil
}

// Transact runs fn in one write transaction of the backend: on SQLite,
// the application's own SQL (through sqlite.Tx(ctx)) and every Append made
// with fn's context commit together, or, when fn returns an error or
// panics, not at all. Subscribers and forwarders see the events only after
// the commit. Reads inside fn see the store as it was before the
// transaction, not its uncommitted appends. A Transact inside fn, with
// fn's context, is nested: its writes are undone when it fails, and the
// outer transaction goes on. Both bundled backends run transactions (on
// memory, without application tables); a backend without them
// ([Transactor]) fails with [errors.ErrUnsupported].
//
// Inside fn, pass fn's context to every call on the store. The transaction
// holds the store's only writer until fn returns, and a write made with any
// other context (context.Background(), a request's context) cannot join
// it: it waits for the transaction to end, which waits for fn, which waits
// for that write. The store cannot tell such a write from one made by
// another goroutine, which must simply wait its turn, so it does not
// refuse it at once: it fails when its context ends or, on SQLite when
// that has no deadline, after the busy timeout, with
// sqlite.ErrWriterTimeout (on memory it waits for its context). Until then
// every other write of the store waits too.
func (s *Store) Transact(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	tr := s.caps.tx
	if tr == nil {
		return fmt.Errorf("transact: %w", errors.ErrUnsupported)
	}
	return s.inTx(ctx, func(ctx context.Context) error { return tr.Transact(ctx, fn) })
}
