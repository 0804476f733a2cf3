package eventstore

import (
	"context"
	"errors"
	"fmt"
)

// VerifyCheck names one of the checks of [Store.Verify].
type VerifyCheck string

// The checks of [Store.Verify], in the order it runs them.
const (
	// VerifyIntegrity is the backend's check of its storage
	// ([IntegrityChecker]; SQLite's PRAGMA integrity_check).
	VerifyIntegrity VerifyCheck = "integrity"
	// VerifyLog checks that positions strictly increase through the global
	// log and that versions run 0, 1, 2... within each life of each stream
	// (for a stream [Store.Prune] removed events of, from the first version
	// it left).
	VerifyLog VerifyCheck = "log"
	// VerifyStreams checks that every stream's version agrees with the
	// events of its current life, and ([Auditor]) that every event has a
	// stream record whose life and category agree with it, and, on a
	// backend that stores checksums (SQLite), that every event still
	// matches its own.
	VerifyStreams VerifyCheck = "streams"
	// VerifySnapshots checks ([Auditor]) that every snapshot belongs to the
	// current life of a stream that exists, at a version the stream has.
	VerifySnapshots VerifyCheck = "snapshots"
	// VerifyCheckpoints checks that no consumer or forwarder checkpoint
	// lies past the end of the log.
	VerifyCheckpoints VerifyCheck = "checkpoints"
)

// VerifyReport is what [Store.Verify] found, and what it checked.
type VerifyReport struct {
	Events      int64  // events in the global log
	Streams     int    // streams that exist
	Snapshots   int    // snapshots stored
	Checkpoints int    // consumer and forwarder checkpoints
	Integrity   string // the backend's own check: "ok", what it found, or "" without one
	// Checked lists the checks that ran to the end, in order.
	Checked []VerifyCheck
	// Skipped lists the checks, or the parts of them, that the backend
	// cannot support, one "check: reason" a line; the bundled backends
	// skip only [VerifyIntegrity] on memory, which has no storage to check.
	Skipped []string
	// Problems lists what is wrong, one finding a line, each starting with
	// the check that found it; a check that could not run is a problem
	// too. Empty when all is well.
	Problems []string

	complete bool // Verify ran every check it could
}

// OK reports whether Verify ran every check the backend supports to the
// end and found nothing wrong. A report of a Verify that failed or was
// cancelled is never OK, nor is the zero VerifyReport.
func (r VerifyReport) OK() bool { return r.complete && len(r.Problems) == 0 }

// maxProblems bounds a report: past it, a broken store says so once.
const maxProblems = 100

func (r *VerifyReport) problem(check VerifyCheck, format string, args ...any) {
	switch {
	case len(r.Problems) < maxProblems:
		r.Problems = append(r.Problems, string(check)+": "+fmt.Sprintf(format, args...))
	case len(r.Problems) == maxProblems:
		r.Problems = append(r.Problems, "... more problems not listed")
	}
}

func (r *VerifyReport) skip(check VerifyCheck, reason string) {
	r.Skipped = append(r.Skipped, string(check)+": "+reason)
}

// Verify checks the store: the backend's own integrity check, positions
// strictly increasing through the global log, versions contiguous within
// each life of each stream, every stream's version agreeing with its
// events and its record with each of its events, every snapshot belonging
// to the current life of a live stream at a version it has, and no
// checkpoint past the end of the log (see the Verify* checks). It reads
// the whole log, in constant memory per stream. It can run while the store
// is written: a stream that disagrees with the log as read is read again
// on its own, and is a problem only if it still disagrees (or never stops
// changing).
//
// The report says what was checked and what was found; an error means a
// check could not run (it is in the report's Problems too, and the report
// is not OK).
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var r VerifyReport
	if err := s.checkOpen(); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	v := verifier{s: s, r: &r}
	for _, step := range []struct {
		check VerifyCheck
		run   func(context.Context) error
	}{
		{VerifyIntegrity, v.integrity},
		// Checkpoints are read before the end of the log is, so that one
		// that moves on meanwhile is not taken to be past it.
		{VerifyCheckpoints, v.readCheckpoints},
		{VerifyLog, v.log},
		{VerifyStreams, v.streams},
		{VerifySnapshots, v.snapshots},
		{VerifyCheckpoints, v.checkpoints},
	} {
		err := step.run(ctx)
		if err == nil {
			err = ctx.Err()
		}
		if errors.Is(err, errSkipped) {
			continue
		}
		if err != nil {
			r.problem(step.check, "could not check: %v", err)
			return r, fmt.Errorf("verify %s: %w", step.check, err)
		}
	}
	r.complete = true
	return r, nil
}

// errSkipped ends a check that does not apply to the backend; the check
// has recorded why.
var errSkipped = errors.New("skipped")

// verifier carries what one run of Verify learns from check to check.
type verifier struct {
	s *Store
	r *VerifyReport

	lifeLen map[string]int64 // events of each stream's latest life in the log
	last    int64            // the last position in the log
	cps     []Checkpoint
	err     error // of a check that pruned made, reported by the check
}

// pruned reports whether a prune has removed events of stream, so that
// its versions may begin past 0. An error makes it false, and is kept for
// the check to report.
func (v *verifier) pruned(ctx context.Context, stream string) bool {
	if v.s.caps.retainer == nil || v.err != nil {
		return false
	}
	ok, err := v.s.caps.retainer.Pruned(ctx, stream)
	v.err = err
	return ok
}

func (v *verifier) done(check VerifyCheck) error {
	v.r.Checked = append(v.r.Checked, check)
	return nil
}

func (v *verifier) integrity(ctx context.Context) error {
	ic := v.s.caps.integrity
	if ic == nil {
		v.r.skip(VerifyIntegrity, "the backend has no storage check")
		return errSkipped
	}
	res, err := ic.CheckIntegrity(ctx)
	if err != nil {
		return err
	}
	v.r.Integrity = res
	if res != "ok" {
		v.r.problem(VerifyIntegrity, "%s", res)
	}
	return v.done(VerifyIntegrity)
}

func (v *verifier) readCheckpoints(ctx context.Context) error {
	var err error
	v.cps, err = v.s.backend.Checkpoints(ctx)
	v.r.Checkpoints = len(v.cps)
	return err
}

func (v *verifier) log(ctx context.Context) error {
	v.lifeLen = map[string]int64{}
	for e, err := range v.s.backend.ReadAll(ctx, ReadOptions{}, Filter{}) {
		if err != nil {
			return err
		}
		v.r.Events++
		if e.Position <= v.last {
			v.r.problem(VerifyLog, "position %d (%s@%d) comes after position %d", e.Position, e.StreamID, e.Version, v.last)
		}
		v.last = e.Position
		n, seen := v.lifeLen[e.StreamID]
		switch {
		case e.Version == n:
			v.lifeLen[e.StreamID] = n + 1
		case e.Version == 0: // a new life, after DeleteStream
			v.lifeLen[e.StreamID] = 1
		case !seen && v.pruned(ctx, e.StreamID): // the front was pruned
			v.lifeLen[e.StreamID] = e.Version + 1
		default:
			v.r.problem(VerifyLog, "%s: version %d at position %d, expected %d or 0", e.StreamID, e.Version, e.Position, n)
			v.lifeLen[e.StreamID] = e.Version + 1
		}
	}
	if v.err != nil {
		return v.err
	}
	return v.done(VerifyLog)
}

func (v *verifier) streams(ctx context.Context) error {
	for info, err := range v.s.backend.ListStreams(ctx, ListOptions{}) {
		if err != nil {
			return err
		}
		v.r.Streams++
		n := v.lifeLen[info.ID]
		if n == info.Version+1 {
			continue
		}
		// Appended to or deleted since the log was read? A stream that
		// keeps changing is a problem too: it could not be checked.
		if settled, err := v.recheck(ctx, info.ID); err != nil || !settled {
			if err != nil {
				return err
			}
			v.r.problem(VerifyStreams, "%s: at version %d, but its log holds %d events of its life", info.ID, info.Version, n)
		}
	}
	if err := v.s.backend.AuditStreams(ctx, func(p string) { v.r.problem(VerifyStreams, "%s", p) }); err != nil {
		return err
	}
	if v.err != nil {
		return v.err
	}
	return v.done(VerifyStreams)
}

// recheck reads a stream again, on its own: it reports whether its version
// and the events of its current life agree once the stream is still for
// the time of one read.
func (v *verifier) recheck(ctx context.Context, stream string) (bool, error) {
	for range 3 {
		before, err := v.s.backend.StreamVersion(ctx, stream)
		if err != nil {
			return false, err
		}
		n := int64(-1) // the next version expected
		var first int64
		contiguous := true
		for e, err := range v.s.backend.ReadStream(ctx, stream, ReadOptions{}) {
			if errors.Is(err, ErrStreamNotFound) {
				break
			}
			if err != nil {
				return false, err
			}
			if n < 0 {
				first, n = e.Version, e.Version // 0, unless the front was pruned
			}
			contiguous = contiguous && e.Version == n
			n++
		}
		after, err := v.s.backend.StreamVersion(ctx, stream)
		if err != nil {
			return false, err
		}
		if n < 0 { // no event: the stream does not exist, or all pruned
			first, n = after+1, after+1
		}
		if first > 0 && !v.pruned(ctx, stream) {
			contiguous = false // only a prune removes the front of a stream
		}
		if before == after {
			return contiguous && n == after+1, nil
		}
	}
	return false, nil
}

func (v *verifier) snapshots(ctx context.Context) error {
	n, err := v.s.backend.AuditSnapshots(ctx, func(p string) { v.r.problem(VerifySnapshots, "%s", p) })
	if err != nil {
		return err
	}
	v.r.Snapshots = n
	return v.done(VerifySnapshots)
}

func (v *verifier) checkpoints(ctx context.Context) error {
	// Purged events may have ended the log past its last event, so the
	// end is the backend's, not the last event read.
	end, err := v.s.backend.LastPosition(ctx)
	if err != nil {
		return err
	}
	for _, c := range v.cps {
		if c.Position > end {
			v.r.problem(VerifyCheckpoints, "%s: checkpoint at position %d, past the end of the log at %d", c.Key, c.Position, end)
		}
	}
	return v.done(VerifyCheckpoints)
}
