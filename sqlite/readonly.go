package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"os"

	"github.com/jmoiron/sqlx"
	msqlite "modernc.org/sqlite"
)

// A read-only Backend reads a WAL-mode file. SQLite reads one through its
// -wal and -shm files, and creates them when they are missing, which
// needs a writable directory and leaves them behind (a read-only
// connection does not remove them). They are missing when no process has
// the file open (the last connection to close removes them), and then
// every commit is in the file itself: such a file is read as immutable,
// with no locks taken and no file created. Once a -wal file appears (a
// writer has opened the file), the immutable connections are retired as
// they come back to the pool and replaced by ordinary read-only ones,
// which see the writer's commits.

// openReader opens a pool of connections that read, with the busy timeout
// and params: through [readOnlyConnector] for a read-only Backend.
func (b *Backend) openReader(params ...string) (*sqlx.DB, error) {
	all := append([]string{"_pragma=busy_timeout(" + b.busyMillis() + ")"}, params...)
	if !b.opts.ReadOnly {
		return sqlx.Open("sqlite", dsn(b.path, all...))
	}
	return sqlx.NewDb(sql.OpenDB(readOnlyConnector{path: b.path, params: append(all, "mode=ro")}), "sqlite"), nil
}

// walExists says whether the -wal file of the store at path exists.
func walExists(path string) bool {
	_, err := os.Lstat(path + "-wal")
	return !errors.Is(err, os.ErrNotExist)
}

// readOnlyConnector opens the connections of a read-only Backend: immutable
// ones while the file has no -wal, ordinary read-only ones otherwise.
type readOnlyConnector struct {
	path   string
	params []string
}

func (c readOnlyConnector) Connect(ctx context.Context) (driver.Conn, error) {
	live := walExists(c.path)
	params := c.params
	if !live {
		params = append(params[:len(params):len(params)], "immutable=1")
	}
	base, err := msqlite.NewConnector(dsn(c.path, params...))
	if err != nil {
		return nil, err
	}
	conn, err := base.Connect(ctx)
	if err != nil || live {
		return conn, err
	}
	return &immutableConn{conn: conn, path: c.path}, nil
}

func (c readOnlyConnector) Driver() driver.Driver {
	base, _ := msqlite.NewConnector("")
	return base.Driver()
}

// immutableConn is a connection that reads the file as immutable: it is
// good only as long as no -wal file has appeared beside the file. It
// forwards every optional interface of the driver's connections.
type immutableConn struct {
	conn driver.Conn
	path string
}

var (
	_ driver.ConnBeginTx        = (*immutableConn)(nil)
	_ driver.ConnPrepareContext = (*immutableConn)(nil)
	_ driver.ExecerContext      = (*immutableConn)(nil)
	_ driver.QueryerContext     = (*immutableConn)(nil)
	_ driver.Pinger             = (*immutableConn)(nil)
	_ driver.SessionResetter    = (*immutableConn)(nil)
	_ driver.Validator          = (*immutableConn)(nil)
)

func (c *immutableConn) Unwrap() driver.Conn { return c.conn }

func (c *immutableConn) Prepare(query string) (driver.Stmt, error) { return c.conn.Prepare(query) }

func (c *immutableConn) Close() error { return c.conn.Close() }

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *immutableConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *immutableConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *immutableConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *immutableConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *immutableConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	return c.conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *immutableConn) Ping(ctx context.Context) error { return c.conn.(driver.Pinger).Ping(ctx) }

// ResetSession retires the connection before it is used again once a
// writer has opened the file: database/sql then opens a fresh one.
func (c *immutableConn) ResetSession(ctx context.Context) error {
	if walExists(c.path) {
		return driver.ErrBadConn
	}
	return c.conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *immutableConn) IsValid() bool {
	return !walExists(c.path) && c.conn.(driver.Validator).IsValid()
}
