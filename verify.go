package eventstore

import (
	"context"
	"fmt"
)

// IntegrityChecker is an optional [Backend] capability: a check of the
// storage itself, such as SQLite's PRAGMA integrity_check.
type IntegrityChecker interface {
	// CheckIntegrity returns "ok", or a description of what is wrong.
	CheckIntegrity(ctx context.Context) (string, error)
}

// VerifyReport is what [Store.Verify] found.
type VerifyReport struct {
	Events    int64  // events in the global log
	Streams   int    // streams that exist
	Snapshots int    // snapshots of those streams
	Integrity string // the backend's own check: "ok", what it found, or "" without one
	// Problems lists what is wrong, one finding a line; empty when all is
	// well.
	Problems []string
}

// OK reports whether Verify found nothing wrong.
func (r VerifyReport) OK() bool { return len(r.Problems) == 0 }

// maxProblems bounds a report: past it, a broken store says so once.
const maxProblems = 100

func (r *VerifyReport) problem(format string, args ...any) {
	switch {
	case len(r.Problems) < maxProblems:
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	case len(r.Problems) == maxProblems:
		r.Problems = append(r.Problems, "... more problems not listed")
	}
}

// Verify checks the store: the backend's own integrity check, positions
// strictly increasing through the global log, versions contiguous within
// each life of each stream, every stream's version agreeing with its
// events, and every snapshot at a version its stream has. It reads the
// whole log, in constant memory per stream. An error means Verify could
// not run; what it found is in the report.
func (s *Store) Verify(ctx context.Context) (VerifyReport, error) {
	var r VerifyReport
	if err := s.checkOpen(); err != nil {
		return r, err
	}
	if ic, ok := s.backend.(IntegrityChecker); ok {
		res, err := ic.CheckIntegrity(ctx)
		if err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		r.Integrity = res
		if res != "ok" {
			r.problem("integrity check: %s", res)
		}
	}

	// lifeLen is the number of events of each stream's latest life seen.
	lifeLen := map[string]int64{}
	var last int64
	for e, err := range s.backend.ReadAll(ctx, ReadOptions{}, Filter{}) {
		if err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		r.Events++
		if e.Position <= last {
			r.problem("position %d (%s@%d) comes after position %d", e.Position, e.StreamID, e.Version, last)
		}
		last = e.Position
		switch n := lifeLen[e.StreamID]; {
		case e.Version == n:
			lifeLen[e.StreamID] = n + 1
		case e.Version == 0: // a new life, after DeleteStream
			lifeLen[e.StreamID] = 1
		default:
			r.problem("%s: version %d at position %d, expected %d or 0", e.StreamID, e.Version, e.Position, n)
			lifeLen[e.StreamID] = e.Version + 1
		}
	}

	sn, hasSnapshots := s.backend.(Snapshotter)
	for info, err := range s.backend.ListStreams(ctx, ListOptions{}) {
		if err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		r.Streams++
		if n := lifeLen[info.ID]; n != info.Version+1 {
			r.problem("%s: at version %d, but its log holds %d events of its life", info.ID, info.Version, n)
		}
		if !hasSnapshots {
			continue
		}
		snaps, err := sn.ListSnapshots(ctx, info.ID)
		if err != nil {
			return r, fmt.Errorf("verify: %w", err)
		}
		r.Snapshots += len(snaps)
		for _, snap := range snaps {
			if snap.Version > info.Version {
				r.problem("%s: snapshot at version %d, but the stream is at %d", info.ID, snap.Version, info.Version)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, nil
}
