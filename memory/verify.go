package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/edge-es/eventstore"
)

// AuditStreams implements [eventstore.Auditor]: every version of a live
// stream must point at its own event in the log, and every event of the
// stream from its current life's first on must be one of them.
func (b *Backend) AuditStreams(ctx context.Context, problem func(string)) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	for _, id := range slices.Sorted(maps.Keys(b.streams)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := b.streams[id]
		if b.purged[id] {
			problem(fmt.Sprintf("%s: purged, but a live stream", id))
		}
		for v, p := range s.positions {
			switch {
			case int64(v) < s.pruned:
				// Pruned: its slot is empty.
			case p < 1 || p > int64(len(b.log)):
				problem(fmt.Sprintf("%s@%d: at position %d, past the end of the log", id, v, p))
			case b.log[p-1].Position == 0:
				problem(fmt.Sprintf("%s@%d: at position %d, which was purged", id, v, p))
			case b.log[p-1].StreamID != id || b.log[p-1].Version != int64(v):
				e := b.log[p-1]
				problem(fmt.Sprintf("%s@%d: at position %d, which holds %s@%d", id, v, p, e.StreamID, e.Version))
			}
		}
	}
	for _, e := range b.log {
		s := b.streams[e.StreamID]
		if e.Position == 0 || s == nil || len(s.positions) == 0 || e.Position < s.positions[0] {
			continue // purged, or of a deleted stream or an earlier life
		}
		if e.Version >= int64(len(s.positions)) || s.positions[e.Version] != e.Position {
			problem(fmt.Sprintf("%s@%d at position %d: in the stream's current life, but not one of its versions", e.StreamID, e.Version, e.Position))
		}
	}
	return nil
}

// AuditSnapshots implements [eventstore.Auditor].
func (b *Backend) AuditSnapshots(ctx context.Context, problem func(string)) (int, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, eventstore.ErrClosed
	}
	n := 0
	for _, id := range slices.Sorted(maps.Keys(b.snapshots)) {
		ls, s := b.snapshots[id], b.streams[id]
		n += len(ls.list)
		for _, snap := range ls.list {
			at := fmt.Sprintf("%s: snapshot at version %d", id, snap.Version)
			switch {
			case s == nil:
				problem(at + ", but the stream does not exist")
			case ls.life != s.life:
				problem(at + " of an earlier life of the stream")
			case snap.Version >= int64(len(s.positions)):
				problem(fmt.Sprintf("%s, but the stream is at %d", at, len(s.positions)-1))
			case snap.Position != s.positions[snap.Version]:
				problem(fmt.Sprintf("%s records position %d, but %s@%d is at position %d", at, snap.Position, id, snap.Version, s.positions[snap.Version]))
			}
		}
	}
	return n, ctx.Err()
}

// LastPosition implements [eventstore.Auditor]: purged events keep their
// slots in the log.
func (b *Backend) LastPosition(ctx context.Context) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, eventstore.ErrClosed
	}
	return int64(len(b.log)), nil
}
