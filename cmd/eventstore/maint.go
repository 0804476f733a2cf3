package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
	msqlite "modernc.org/sqlite"
)

// consumerKnown reports whether the store has a checkpoint of the
// consumer name, or of a member of a group of that name when group is set.
func consumerKnown(ctx context.Context, store *eventstore.Store, name string, group bool) (bool, error) {
	infos, err := store.Consumers(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(infos, func(c eventstore.ConsumerInfo) bool {
		return c.Key == name || (group && strings.HasPrefix(c.Key, name+"["))
	}), nil
}

// unknownConsumer is the error for a consumer the store has no
// checkpoint of.
func unknownConsumer(path, name string) error {
	return fmt.Errorf("no consumer %q in %s ('eventstore consumers %s' lists them)", name, path, path)
}

// running explains ErrConsumerRunning.
func running(name string, err error) error {
	if errors.Is(err, eventstore.ErrConsumerRunning) {
		return fmt.Errorf("consumer %s is running, in this or another process: stop it first (%w)", name, err)
	}
	return err
}

func cmdResetConsumer(ctx context.Context, e *env, args []string) error {
	fs := newFlags("reset-consumer")
	from := fs.Int64("from", 0, "the first position `POS` it handles when it next starts (0: the start of the log)")
	pos, err := parse(e, fs, args, 2)
	if err != nil {
		return err
	}
	if err := nonNegative("from", *from); err != nil {
		return err
	}
	store, _, err := open(pos[0], true)
	if err != nil {
		return err
	}
	defer store.Close()
	name := pos[1]
	known, err := consumerKnown(ctx, store, name, true)
	if err != nil {
		return err
	}
	if !known {
		return unknownConsumer(pos[0], name)
	}
	if err := store.ResetConsumer(ctx, name, *from); err != nil {
		return running(name, err)
	}
	infos, err := store.Consumers(ctx)
	if err != nil {
		return err
	}
	for _, c := range infos {
		if c.Key == name || strings.HasPrefix(c.Key, name+"[") {
			fmt.Fprintf(e.stdout, "reset %s: it handles the events from position %d on when it next starts (%d to go)\n", c.Key, c.Position+1, c.Lag)
		}
	}
	return nil
}

func cmdParked(ctx context.Context, e *env, args []string) error {
	fs := newFlags("parked")
	retry := fs.Int64("retry", 0, "have the consumer handle the parked event at `POS` again when it next starts")
	drop := fs.Int64("drop", 0, "forget the parked event at `POS`")
	asJSON := jsonFlag(fs, "one JSON object per parked event and line instead of a table")
	pos, err := parse(e, fs, args, 2)
	if err != nil {
		return err
	}
	doRetry, doDrop := isSet(fs, "retry"), isSet(fs, "drop")
	switch {
	case doRetry && doDrop:
		return usagef("-retry and -drop: give one")
	case doRetry && *retry < 1:
		return usagef("-retry %d: a position is 1 or more", *retry)
	case doDrop && *drop < 1:
		return usagef("-drop %d: a position is 1 or more", *drop)
	}
	store, _, err := open(pos[0], doRetry || doDrop)
	if err != nil {
		return err
	}
	defer store.Close()
	name := pos[1]
	switch {
	case doRetry:
		if err := store.RetryParked(ctx, name, *retry); err != nil {
			return parkedErr(pos[0], name, err)
		}
		fmt.Fprintf(e.stdout, "%s handles the event at position %d again when it next starts\n", name, *retry)
		return nil
	case doDrop:
		if err := store.DropParked(ctx, name, *drop); err != nil {
			return parkedErr(pos[0], name, err)
		}
		fmt.Fprintf(e.stdout, "dropped the event at position %d: %s will not handle it\n", *drop, name)
		return nil
	}
	return listParked(ctx, e, store, pos[0], name, *asJSON)
}

// listParked prints the parked events of consumer name.
func listParked(ctx context.Context, e *env, store *eventstore.Store, path, name string, asJSON bool) error {
	parked, err := store.Parked(ctx, name)
	if err != nil {
		return err
	}
	if len(parked) == 0 {
		known, err := consumerKnown(ctx, store, name, false)
		if err != nil {
			return err
		}
		if !known {
			return unknownConsumer(path, name)
		}
	}
	if asJSON {
		for _, p := range parked {
			if err := jsonLine(e.stdout, parkedJSON{name, p.Position, p.EventID.String(), p.StreamID, p.Attempts, p.Error, jsonTime(p.ParkedAt)}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "POSITION\tSTREAM\tEVENT\tATTEMPTS\tPARKED\tERROR")
	for _, p := range parked {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\n", p.Position, p.StreamID, p.EventID, p.Attempts, stamp(p.ParkedAt), oneLine(p.Error))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d parked events\n", len(parked))
	return nil
}

type parkedJSON struct {
	Consumer string     `json:"consumer"`
	Position int64      `json:"position"`
	EventID  string     `json:"event_id"`
	Stream   string     `json:"stream"`
	Attempts int        `json:"attempts"` // 0: to be retried
	Error    string     `json:"error"`
	ParkedAt *time.Time `json:"parked_at"`
}

func parkedErr(path, name string, err error) error {
	if errors.Is(err, eventstore.ErrNotParked) {
		return fmt.Errorf("%w ('eventstore parked %s %s' lists them)", err, path, name)
	}
	return running(name, err)
}

// oneLine keeps a table row on one line.
func oneLine(s string) string {
	s = strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(s)
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

func cmdVacuum(ctx context.Context, e *env, args []string) error {
	fs := newFlags("vacuum")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	path := pos[0]
	// Opened as a store first, so that vacuum refuses what is not one.
	store, _, err := open(path, false)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	before := fileSize(path)
	start := time.Now()
	if err := vacuum(ctx, path); err != nil {
		return err
	}
	after := fileSize(path)
	fmt.Fprintf(e.stdout, "vacuumed %s: %s before, %s after (%s freed) in %v\n", path,
		bytesize(before), bytesize(after), bytesize(max(before-after, 0)), time.Since(start).Round(time.Millisecond))
	return nil
}

// vacuum rebuilds the file with SQLite's VACUUM, in auto_vacuum=INCREMENTAL
// mode, holding it alone: in
// exclusive locking mode the connection's first access takes an exclusive
// lock on the file, which fails at once while another connection, of any
// process, has it open, and keeps others out until the vacuum is done.
func vacuum(ctx context.Context, path string) error {
	u := url.URL{Scheme: "file", Path: path, OmitHost: true}
	db, err := sql.Open("sqlite", u.String()+"?_pragma=busy_timeout(0)&_pragma=locking_mode(EXCLUSIVE)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "BEGIN EXCLUSIVE; COMMIT"); err != nil {
		if busy(err) {
			return fmt.Errorf("%s is in use by another process: stop it first, or back the store up instead (the copy is compacted)", path)
		}
		return err
	}
	// Files of releases before incremental vacuum are converted, so that
	// the store gives space back on its own from now on (Store.ReclaimSpace).
	if _, err := db.ExecContext(ctx, "PRAGMA auto_vacuum = INCREMENTAL"); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
		return err
	}
	// Fold the rewritten pages into the file, so that its size is the
	// new one and no WAL is left.
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// busy reports whether err is SQLite's "database is locked" (SQLITE_BUSY)
// or "table is locked" (SQLITE_LOCKED).
func busy(err error) bool {
	var se *msqlite.Error
	if errors.As(err, &se) {
		code := se.Code() & 0xff
		return code == 5 || code == 6
	}
	return false
}

// fileSize is the size of the store's file and its WAL.
func fileSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}
