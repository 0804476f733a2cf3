package sqlite

import (
	"context"
	"errors"
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
	defer func() {
		for _, q := range batch {
			close(q.done)
		}
	}()
	if len(batch) == 1 {
		b.runAlone(batch[0]) // no one to share with: no group overhead
		return
	}
	// The group's transaction must not end because one caller gave up.
	// No savepoints: an append whose checks fail has written nothing, and
	// one that fails half-written (a duplicate event ID, an I/O error)
	// spoils the group, which is then rolled back and run one by one.
	ctx := context.WithoutCancel(batch[0].ctx)
	err := b.write(ctx, func(tx *sqlx.Tx) error {
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
		return nil
	})
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

// errSpoiled rolls back a group in which an append failed half-written.
var errSpoiled = errors.New("eventstore/sqlite: group spoiled by a failed append")

// runAlone runs q in a transaction of its own.
func (b *Backend) runAlone(q *queuedAppend) {
	q.err = b.write(q.ctx, func(tx *sqlx.Tx) error {
		var err error
		q.res, err = b.appendIn(q.ctx, tx, q.req)
		return err
	})
	if q.err != nil {
		q.res = eventstore.AppendResult{}
	}
	b.groups.Add(1)
}
