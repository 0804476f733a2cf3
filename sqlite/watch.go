package sqlite

import (
	"context"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

var _ eventstore.ChangeWatcher = (*Backend)(nil)

// WatchChanges implements [eventstore.ChangeWatcher]: it notices commits by
// other processes (or other Backends on the same file) by polling PRAGMA
// data_version every [Options.WatchInterval] on a connection of its own,
// which SQLite changes whenever another connection has committed. The
// Store runs it only while it has subscriptions, so a store without
// subscribers does not poll.
func (b *Backend) WatchChanges(ctx context.Context, changed func()) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	// data_version is per connection: keep one connection for the watch.
	db, err := b.openReader("_pragma=query_only(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	var (
		conn      *sqlx.Conn
		immutable bool // conn reads the file as immutable: data_version never moves
		last      int64
	)
	connect := func() error {
		if conn != nil {
			conn.Close()
		}
		var err error
		if conn, err = db.Connx(ctx); err != nil {
			return fail(ctx, err)
		}
		conn.Raw(func(dc any) error {
			_, immutable = dc.(*immutableConn)
			return nil
		})
		return fail(ctx, conn.GetContext(ctx, &last, "PRAGMA data_version"))
	}
	if err := connect(); err != nil {
		return err
	}
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	// A commit between the subscription's first read and the line above
	// changed nothing this watch can see: wake the subscriptions once to
	// cover it.
	changed()
	tick := time.NewTicker(b.opts.WatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if immutable && walExists(b.path) {
			// A writer has opened the file of a read-only Backend that
			// read it as immutable: follow it from now on.
			if err := connect(); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				immutable = true // try again next tick
				continue
			}
			changed()
			continue
		}
		var v int64
		if err := conn.GetContext(ctx, &v, "PRAGMA data_version"); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			continue // a transient error (busy): try again next tick
		}
		if v != last {
			last = v
			changed()
		}
	}
}
