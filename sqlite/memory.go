package sqlite

import (
	"errors"
	"fmt"
	"github.com/edge-es/eventstore"
	"os"
	"path/filepath"
)

// OpenMemory opens a new, empty store that lives only as long as the
// Backend: for tests of SQL projections, with the same SQL, [Tx],
// [eventstore.Store.Transact], exactly-once consumers and [Backend.Read]
// as a store opened with [Open]. Options are optional: OpenMemory() and a
// nil opts give the defaults; more than one opts, or [Options.ReadOnly]
// (nothing could be read), is [eventstore.ErrInvalidArgument].
//
// The database is a file in a new private directory, which Close removes
// with everything in it; on Linux the directory is made in /dev/shm, which
// the kernel keeps in memory, and elsewhere in [os.TempDir]. A real file,
// not SQLite's ":memory:" or a shared-cache memory database, because the
// backend needs what those lack: readers that never wait for the writer
// (a shared-cache reader waits on the writer's table locks, and a writer
// on the readers'), and one database seen by the writer and every reader
// connection. So it behaves exactly as a store opened with Open. Another
// process cannot find it by name, so there is nothing to watch or share.
func OpenMemory(options ...*Options) (*Backend, error) {
	if len(options) > 1 {
		return nil, fmt.Errorf("open memory: %w: %d options, want at most one", eventstore.ErrInvalidArgument, len(options))
	}
	var opts *Options
	if len(options) == 1 {
		opts = options[0]
	}
	if opts != nil && opts.ReadOnly {
		return nil, fmt.Errorf("open memory: %w: read-only", eventstore.ErrInvalidArgument)
	}
	dir, err := os.MkdirTemp(memoryDir(), "eventstore-")
	if err != nil {
		return nil, fmt.Errorf("open memory: %w", err)
	}
	b, err := Open(filepath.Join(dir, "events.db"), opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("open memory: %w", err)
	}
	b.removeDir = dir
	return b, nil
}

// memoryDir is where OpenMemory makes its directory: /dev/shm when it is
// a writable directory, the temporary directory otherwise.
func memoryDir() string {
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() {
		if f, err := os.CreateTemp(shm, "eventstore-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return shm
		}
	}
	return os.TempDir()
}

// removeTemp removes the directory of a Backend of OpenMemory.
func (b *Backend) removeTemp() error {
	if b.removeDir == "" {
		return nil
	}
	if err := os.RemoveAll(b.removeDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", b.removeDir, err)
	}
	return nil
}
