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
	w := &watcher{db: db}
	defer w.close()
	if err := w.connect(ctx); err != nil {
		return err
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
		moved, err := w.poll(ctx, b.path)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil && moved {
			changed()
		}
		// Another error is transient (busy, a connection that could not
		// be opened yet): try again next tick.
	}
}

// watcher is the connection of one WatchChanges and what it last saw.
type watcher struct {
	db        *sqlx.DB
	conn      *sqlx.Conn
	immutable bool // conn reads the file as immutable: data_version never moves
	last      int64
}

// connect opens the watch's connection, anew when it had one.
func (w *watcher) connect(ctx context.Context) error {
	w.close()
	var err error
	if w.conn, err = w.db.Connx(ctx); err != nil {
		return fail(ctx, err)
	}
	w.conn.Raw(func(dc any) error {
		_, w.immutable = dc.(*immutableConn)
		return nil
	})
	return fail(ctx, w.conn.GetContext(ctx, &w.last, "PRAGMA data_version"))
}

// poll reports whether another connection may have committed since the
// last poll.
func (w *watcher) poll(ctx context.Context, path string) (bool, error) {
	if w.immutable && walExists(path) {
		// A writer has opened the file of a read-only Backend that read
		// it as immutable: follow it from now on.
		if err := w.connect(ctx); err != nil {
			w.immutable = true // try again next tick
			return false, err
		}
		return true, nil
	}
	var v int64
	if err := w.conn.GetContext(ctx, &v, "PRAGMA data_version"); err != nil {
		return false, err
	}
	if v == w.last {
		return false, nil
	}
	w.last = v
	return true, nil
}

func (w *watcher) close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}
