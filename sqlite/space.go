package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// minMaxBytes is the smallest storage budget: room for the schema, a
// WAL of a few dozen frames and some events.
const minMaxBytes = 1 << 20

// walFrames is how many frames the writer writes to the WAL between two
// checkpoints of the Backend's checkpointer, which copies it into the
// database file off the commits' path (see checkpointer): SQLite's
// default for its own. With a budget, the WAL's share of the budget, an
// eighth at most, is a third more than that (room for the transaction
// that reaches it), and the writer copies the WAL itself at walFrames, or
// fewer to fit a small share, with no checkpointer (see initSpace).
const walFrames = 1000

// walSafety is how many times walFrames the WAL holds, without a budget,
// before the writer copies it in a commit: the bound of the WAL when the
// checkpointer falls behind.
const walSafety = 4

// shmBytes is the size of the -shm file of a WAL of up to 4096 frames.
const shmBytes = 32 << 10

// reclaimStep is how many free pages the first transaction of
// ReclaimSpace gives back. The next ones give back twice as many, or half,
// as the last took less than reclaimFast or more than reclaimSlow, within
// reclaimMin..reclaimMax: a step's time per page grows with the free pages
// SQLite searches (a file with hundreds of MiB free takes ten times as
// long), and the writer it holds must be free again within a few
// milliseconds.
const (
	reclaimStep = 128
	reclaimMin  = 8
	reclaimMax  = 2048
	reclaimFast = time.Millisecond
	reclaimSlow = 3 * time.Millisecond
)

var (
	_ eventstore.SpaceReclaimer = (*Backend)(nil)
	_ eventstore.Reporter       = (*Backend)(nil)
)

// space keeps the storage budget of a Backend and what it last reported.
type space struct {
	pageSize int64 // of the file
	walBytes int64 // the -wal file's share: its size at most, unless a transaction is bigger
	maxPages int64 // the database file's share, in pages; 0: no budget
	budget   int64 // Options.MaxBytes
	warn     int64 // Options.WarnBytes

	usage  *sqlx.Stmt                                                  // sqlUsage on the writer, with a budget
	report atomic.Pointer[func(context.Context, eventstore.Happening)] // set by ReportTo

	checked  time.Time // the last check of the use; only the writer's holder touches it
	walTried time.Time // the last cut of a -wal file past its share; the same

	mu      sync.Mutex
	state   string                 // "storage.ok", "storage.low" or "storage.full"
	last    int64                  // bytes in use at the last check
	pending []eventstore.Happening // to report once the writer is released

	emit sync.Mutex // one flush at a time, so that happenings keep their order
}

// checkEvery is how often the use of the budget is checked, far from its
// warning threshold: at most once per this, at a commit; nearer, or past
// it, at every commit.
const checkEvery = 100 * time.Millisecond

// newFileParams are the connection parameters that must come first, before
// journal_mode, on a file that does not exist yet: auto_vacuum can only be
// chosen before the file's first page is written.
func newFileParams(path string) []string {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	return []string{"_pragma=auto_vacuum(INCREMENTAL)"}
}

// initSpace reads the page size and sets the writer's limits: the WAL's
// size and, with a budget, the database file's.
func (b *Backend) initSpace(ctx context.Context) error {
	sp := &b.space
	sp.state = "storage.ok"
	if err := b.writer.GetContext(ctx, &sp.pageSize, `PRAGMA page_size`); err != nil {
		return translate(err)
	}
	frame := sp.pageSize + 24
	// The checkpointer copies the WAL into the file off the commits' path
	// every walFrames frames; the writer's own checkpoint, in a commit,
	// bounds the WAL at walSafety times that, when the checkpointer falls
	// behind, and the -wal file is cut back to that and a third more when
	// it starts again.
	b.ckpt.frames, b.ckpt.safety = walFrames, walSafety*walFrames
	share := b.ckpt.safety * 4 / 3 // frames
	if o := b.opts; o.MaxBytes > 0 {
		// With a budget, the WAL's share of it bounds the WAL: the
		// writer's own checkpoint runs at three quarters of the share,
		// and no checkpointer. SQLite runs one checkpoint at a time: a
		// commit whose checkpoint found the checkpointer's under way
		// would leave the WAL to grow past its share
		// (TestBudget_Append failed one run in three with it).
		checkpointAt := int64(walFrames)
		share = checkpointAt * 4 / 3
		if (o.MaxBytes/8-shmBytes)/frame < share {
			share = (o.MaxBytes/8 - shmBytes) / frame
			checkpointAt = share * 3 / 4
		}
		b.ckpt.frames, b.ckpt.safety = 0, checkpointAt
		sp.budget, sp.warn = o.MaxBytes, o.WarnBytes
	}
	sp.walBytes = 32 + share*frame // its header, and its frames
	if sp.budget > 0 {
		sp.maxPages = (sp.budget - sp.walBytes - shmBytes) / sp.pageSize
	}
	pragmas := []string{
		"PRAGMA wal_autocheckpoint = " + strconv.FormatInt(b.ckpt.safety, 10),
		// A WAL that grew past its share (a big transaction, a read
		// that held the checkpoint back) is cut back when it starts again.
		"PRAGMA journal_size_limit = " + strconv.FormatInt(sp.walBytes, 10),
	}
	if sp.maxPages > 0 {
		pragmas = append(pragmas, "PRAGMA max_page_count = "+strconv.FormatInt(sp.maxPages, 10))
	}
	for _, p := range pragmas {
		if _, err := b.writer.ExecContext(ctx, p); err != nil {
			return fmt.Errorf("%s: %w", p, translate(err))
		}
	}
	if sp.budget > 0 {
		var err error
		if sp.usage, err = b.writer.PreparexContext(ctx, sqlUsage); err != nil {
			return translate(err)
		}
	}
	return nil
}

// sqlUsage reads how much of the file is in use, and its limit.
const sqlUsage = `SELECT * FROM pragma_page_count(), pragma_freelist_count(), pragma_max_page_count()`

// ReportTo implements [eventstore.Reporter]: the storage happenings.
func (b *Backend) ReportTo(report func(context.Context, eventstore.Happening)) {
	b.space.report.Store(&report)
}

// committed runs after each write transaction committed, while the writer
// is still held: it wakes the checkpointer when the WAL has grown enough,
// and checks the budget: its use, against its threshold, and that the
// file's limit is still in force. What it has to report waits for release.
func (b *Backend) committed(ctx context.Context) {
	b.wrote(ctx)
	sp := &b.space
	if sp.budget == 0 {
		sp.mu.Lock()
		if sp.state == "storage.full" { // the disk had room again
			sp.transition("storage.ok", 0, nil)
		}
		sp.mu.Unlock()
		return
	}
	// A -wal file past its share, because reads kept the checkpoints from
	// copying all of it, would take the budget's room: it is copied and cut
	// back now, the writer waiting for the reads under way at most walWait
	// (and trying again no sooner than checkEvery when they last longer).
	if time.Since(sp.walTried) >= checkEvery && fileSize(b.path+"-wal") > sp.walBytes {
		sp.walTried = time.Now()
		b.truncateWAL(context.WithoutCancel(ctx))
	}
	// Far below the threshold, a check now and then is enough: the limit
	// itself is SQLite's to enforce, at every page.
	sp.mu.Lock()
	far := sp.state == "storage.ok" && sp.last < sp.warn-sp.budget/16
	sp.mu.Unlock()
	if far && time.Since(sp.checked) < checkEvery {
		return
	}
	sp.checked = time.Now()
	var pages, free, limit int64
	err := sp.usage.QueryRowxContext(context.WithoutCancel(ctx)).Scan(&pages, &free, &limit)
	if err != nil {
		return // the write is done; the next one checks again
	}
	// max_page_count is never set below the file's size, and a
	// connection the pool opened again has none: set it again once the
	// file is small enough.
	if limit != sp.maxPages && pages < limit {
		b.writer.ExecContext(context.WithoutCancel(ctx), "PRAGMA max_page_count = "+strconv.FormatInt(sp.maxPages, 10))
	}
	used := sp.used(pages, free)
	sp.mu.Lock()
	defer sp.mu.Unlock()
	sp.last = used
	switch {
	case used >= sp.warn && sp.state == "storage.ok":
		sp.transition("storage.low", used, nil)
	case used < sp.warn && sp.state != "storage.ok":
		sp.transition("storage.ok", used, nil)
	}
}

// walWait is how long a commit that cuts back a -wal file past its share
// waits for the reads under way.
const walWait = 20 * time.Millisecond

// truncateWAL copies the WAL into the file and truncates it, waiting for
// the reads under way at most walWait; the writer is held. It is best
// effort: when a read lasts longer, the WAL stays as it is.
func (b *Backend) truncateWAL(ctx context.Context) {
	b.writer.ExecContext(ctx, "PRAGMA busy_timeout = "+strconv.FormatInt(walWait.Milliseconds(), 10))
	b.ckpt.copy(ctx, b, func() error {
		_, err := b.writer.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		return err
	})
	b.writer.ExecContext(ctx, "PRAGMA busy_timeout = "+b.busyMillis())
}

// transition moves to state and keeps the happening that says so for
// flush to report. sp.mu is held.
func (sp *space) transition(state string, used int64, err error) {
	sp.state = state
	sp.pending = append(sp.pending, eventstore.Happening{Category: eventstore.CategoryStorage, Name: state, Bytes: used, Limit: sp.budget, Err: err})
}

// flush reports, in order, what committed or noteFull found. It runs with
// the writer free.
func (sp *space) flush(ctx context.Context) {
	sp.emit.Lock()
	defer sp.emit.Unlock()
	sp.mu.Lock()
	hs := sp.pending
	sp.pending = nil
	sp.mu.Unlock()
	if r := sp.report.Load(); r != nil {
		for _, h := range hs {
			(*r)(ctx, h)
		}
	}
}

// noteFull reports, once until the store has room again, a write that
// failed for want of it: "storage.full", after "storage.low" when the
// budget, rather than the disk, filled up between two checks.
func (b *Backend) noteFull(ctx context.Context, err error) {
	if !errors.Is(err, eventstore.ErrStorageFull) {
		return
	}
	sp := &b.space
	used := int64(-1)
	if sp.budget > 0 && sp.lastState() == "storage.ok" {
		var pages, free, limit int64
		if b.reader.QueryRowxContext(context.WithoutCancel(ctx), sqlUsage).Scan(&pages, &free, &limit) == nil {
			used = sp.used(pages, free)
		}
	}
	sp.mu.Lock()
	if used >= 0 {
		sp.last = used
	}
	if sp.state == "storage.ok" && sp.budget > 0 && sp.last >= sp.warn { // not a full disk
		sp.transition("storage.low", sp.last, nil)
	}
	if sp.state != "storage.full" {
		sp.transition("storage.full", sp.last, err)
	}
	sp.mu.Unlock()
	sp.flush(context.WithoutCancel(ctx))
}

func (sp *space) lastState() string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.state
}

// used is the use of the budget by a file of pages pages, free of them
// free.
func (sp *space) used(pages, free int64) int64 {
	return (pages-free)*sp.pageSize + sp.walBytes + shmBytes
}

// ReclaimSpace implements [eventstore.SpaceReclaimer] with SQLite's
// incremental vacuum, in steps: each, a write transaction of its own,
// moves free pages from the end of the file into the room of removed
// events, as many as take one to three milliseconds (from 8 to 2,048
// pages; 128 at first), so that an Append waits for one such step at
// most; after each, a connection of its own
// copies the WAL into the file, so that the appends meanwhile need not.
// A last checkpoint, with the writer held, copies the rest, and the file
// shrinks. It returns how many bytes the database shrank by (its pages
// that were free, given back; the file follows at the checkpoint). A read
// that began before ReclaimSpace and still runs keeps the last checkpoint
// from copying everything: the file then shrinks at a later checkpoint.
//
// The file must have been created with auto_vacuum=INCREMENTAL, as [Open]
// creates every new file since this release. For a file created earlier,
// ReclaimSpace gives nothing back (returns 0): the room of removed events
// is still used again by later ones, so the file stops growing, but it
// keeps its size until it is converted, once, by 'eventstore vacuum'
// (offline: VACUUM rewrites the whole file). It must not be called inside
// [eventstore.Store.Transact].
func (b *Backend) ReclaimSpace(ctx context.Context) (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	if b.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if Tx(ctx) != nil {
		return 0, fmt.Errorf("%w: reclaim space inside a transaction", eventstore.ErrInvalidArgument)
	}
	var mode int
	if err := b.reader.GetContext(ctx, &mode, `PRAGMA auto_vacuum`); err != nil {
		return 0, fail(ctx, err)
	}
	if mode != 2 { // NONE keeps its pages; FULL gives them back at each commit
		return 0, nil
	}
	// The WAL is copied into the file from a connection of its own
	// after each step, so that the appends meanwhile do not do it in
	// their commits, and the file shrinks once it is all copied.
	side, err := b.openReader()
	if err != nil {
		return 0, err
	}
	defer side.Close()
	side.SetMaxOpenConns(1)
	checkpoint := func() error {
		b.ckpt.copying.Lock()
		defer b.ckpt.copying.Unlock()
		_, err := side.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		return fail(ctx, err)
	}
	var freed int64 // pages
	step := reclaimStep
	for {
		var free, pages, after int64
		var took time.Duration
		err := b.write(ctx, func(tx *sqlx.Tx) error {
			if err := tx.GetContext(ctx, &pages, `PRAGMA page_count`); err != nil {
				return fail(ctx, err)
			}
			start := time.Now()
			if _, err := b.exec(ctx, tx, "PRAGMA incremental_vacuum("+strconv.Itoa(step)+")"); err != nil {
				return err
			}
			took = time.Since(start)
			return fail(ctx, tx.QueryRowxContext(ctx, `SELECT * FROM pragma_page_count(), pragma_freelist_count()`).Scan(&after, &free))
		})
		switch {
		case took < reclaimFast && step < reclaimMax:
			step *= 2
		case took > reclaimSlow && step > reclaimMin:
			step /= 2
		}
		if err == nil {
			freed += pages - after
			err = checkpoint()
		}
		if err != nil {
			return freed * b.space.pageSize, err
		}
		if free == 0 {
			break
		}
	}
	// The file shrinks at a checkpoint that copies all of the WAL: the
	// last, with the writer held, so that no append adds to it meanwhile.
	// It has only the last step's frames left to copy.
	return freed * b.space.pageSize, b.checkpoint(ctx)
}

// checkpoint copies the WAL into the database file, as the checkpointer
// does every walFrames frames, and truncates the file to its new size
// when it copied all of it: nothing else writes meanwhile, since it holds
// the writer. A read that began before the last commit keeps it from
// copying the frames that read may need.
func (b *Backend) checkpoint(ctx context.Context) error {
	if err := b.acquire(ctx, time.Time{}); err != nil {
		return err
	}
	defer b.release()
	return b.ckpt.copy(ctx, b, func() error {
		_, err := b.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		return fail(ctx, err)
	})
}

// isDiskFull reports whether err is the operating system's "no space left
// on device".
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC)
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
