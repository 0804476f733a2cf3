package sqlite

import (
	"context"
	"sync"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// maxGroup is the most appends one group commit takes.
const maxGroup = 256

// groupCommit batches concurrent appends into one write transaction: while
// one transaction commits, the appends that arrive queue up, and the next
// one takes them all. Each append runs in a savepoint of its own, against
// the state the appends before it in the group left, so a version conflict
// fails that append alone; each returns only once the transaction holding
// it has committed. A lone append finds nobody to wait for and runs at
// once, so it pays nothing for this.
//
// The append that finds no transaction running leads: it takes the queue,
// runs it, hands every queued append its result, and leads again while
// appends keep arriving; the others wait for their result.
type groupCommit struct {
	mu      sync.Mutex
	leading bool
	queue   []*queuedAppend
}

type queuedAppend struct {
	ctx  context.Context
	req  eventstore.AppendRequest
	res  eventstore.AppendResult
	err  error
	done chan struct{}
}

func (g *groupCommit) append(ctx context.Context, b *Backend, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	if err := b.checkOpen(); err != nil {
		return eventstore.AppendResult{}, err
	}
	q := &queuedAppend{ctx: ctx, req: req, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-q.done:
			return q.res, q.err
		case <-ctx.Done():
			// It may still be written: wait for the outcome rather than
			// report a cancellation for an append that committed.
			<-q.done
			return q.res, q.err
		}
	}
	g.leading = true
	for {
		n := min(len(g.queue), maxGroup)
		batch := g.queue[:n:n]
		g.queue = g.queue[n:]
		g.mu.Unlock()
		b.commitGroup(batch)
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.leading = false
			g.mu.Unlock()
			break
		}
	}
	<-q.done
	return q.res, q.err
}

// commitGroup writes batch in one transaction and reports to each append.
func (b *Backend) commitGroup(batch []*queuedAppend) {
	finish := func(err error) {
		for _, q := range batch {
			if err != nil && q.err == nil {
				q.res, q.err = eventstore.AppendResult{}, err
			}
			close(q.done)
		}
	}
	if len(batch) == 1 {
		// Alone: its own transaction, no savepoint needed.
		q := batch[0]
		q.err = b.write(q.ctx, func(tx *sqlx.Tx) error {
			var err error
			q.res, err = b.appendIn(q.ctx, tx, q.req)
			return err
		})
		b.groups.Add(1)
		finish(nil)
		return
	}
	// The group's transaction must not end because one caller gave up.
	ctx := context.WithoutCancel(batch[0].ctx)
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		for _, q := range batch {
			if err := q.ctx.Err(); err != nil {
				q.err = err // gave up before its turn: not written
				continue
			}
			q.err = b.savepoint(ctx, tx, func(tx *sqlx.Tx) error {
				var err error
				q.res, err = b.appendIn(ctx, tx, q.req)
				return err
			})
			if q.err != nil {
				q.res = eventstore.AppendResult{}
			}
		}
		return nil
	})
	b.groups.Add(1)
	finish(err)
}
