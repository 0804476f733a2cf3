package sqlite

import (
	"context"
	"strconv"
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
	db, err := sqlx.Open("sqlite", dsn(b.path,
		"_pragma=busy_timeout("+strconv.FormatInt(b.opts.BusyTimeout.Milliseconds(), 10)+")",
		"_pragma=query_only(1)",
	))
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Connx(ctx)
	if err != nil {
		return fail(ctx, err)
	}
	defer conn.Close()
	var last int64
	if err := conn.GetContext(ctx, &last, "PRAGMA data_version"); err != nil {
		return fail(ctx, err)
	}
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
