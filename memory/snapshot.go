package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/edge-es/eventstore"
)

// lifeSnapshots are a stream's snapshots in ascending version, with the
// life of the stream they were taken of: a *stream is one life, as
// DeleteStream drops it and a later Append makes a new one.
type lifeSnapshots struct {
	life *stream
	list []eventstore.Snapshot
}

// current returns the snapshots of stream's current life, or nil.
func (b *Backend) current(streamID string) []eventstore.Snapshot {
	ls := b.snapshots[streamID]
	if s := b.streams[streamID]; s == nil || ls.life != s {
		return nil
	}
	return ls.list
}

// SaveSnapshot implements [eventstore.Snapshotter]. The stream's check and
// the write happen under one lock, which DeleteStream takes too.
func (b *Backend) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot, keep int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := b.streams[snap.StreamID]
	if s == nil {
		return eventstore.ErrStreamNotFound
	}
	if last := int64(len(s.positions)) - 1; snap.Version > last {
		return fmt.Errorf("%w: version %d is ahead of the stream (at %d)", eventstore.ErrInvalidArgument, snap.Version, last)
	}
	if p := s.positions[snap.Version]; snap.Position > 0 && snap.Position != p {
		return fmt.Errorf("%w: %s@%d is at position %d, not %d: the snapshot is of an earlier life", eventstore.ErrStreamNotFound, snap.StreamID, snap.Version, p, snap.Position)
	}
	snap.Position = s.positions[snap.Version]
	if b.snapshots == nil {
		b.snapshots = make(map[string]lifeSnapshots)
	}
	snap.Data, snap.Metadata = clone(snap.Data), clone(snap.Metadata)
	list := b.current(snap.StreamID) // an earlier life's snapshots are dropped
	i, found := slices.BinarySearchFunc(list, snap.Version, bySnapshotVersion)
	if found {
		list[i] = snap
	} else {
		list = slices.Insert(list, i, snap)
	}
	if keep > 0 && len(list) > keep {
		list = slices.Delete(list, 0, len(list)-keep)
	}
	b.snapshots[snap.StreamID] = lifeSnapshots{life: s, list: list}
	return nil
}

func bySnapshotVersion(s eventstore.Snapshot, v int64) int { return cmp.Compare(s.Version, v) }

// LoadSnapshot implements [eventstore.Snapshotter].
func (b *Backend) LoadSnapshot(ctx context.Context, stream string, version int64) (eventstore.Snapshot, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return eventstore.Snapshot{}, eventstore.ErrClosed
	}
	list := b.current(stream)
	if len(list) == 0 {
		return eventstore.Snapshot{}, eventstore.ErrSnapshotNotFound
	}
	s := list[len(list)-1]
	if version >= 0 {
		i, found := slices.BinarySearchFunc(list, version, bySnapshotVersion)
		if !found {
			return eventstore.Snapshot{}, eventstore.ErrSnapshotNotFound
		}
		s = list[i]
	}
	s.Data, s.Metadata = clone(s.Data), clone(s.Metadata)
	return s, nil
}

// ListSnapshots implements [eventstore.Snapshotter].
func (b *Backend) ListSnapshots(ctx context.Context, stream string) ([]eventstore.Snapshot, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, eventstore.ErrClosed
	}
	out := slices.Clone(b.current(stream))
	for i := range out {
		out[i].Data, out[i].Metadata = clone(out[i].Data), clone(out[i].Metadata)
	}
	return out, nil
}

// DeleteSnapshots implements [eventstore.Snapshotter].
func (b *Backend) DeleteSnapshots(ctx context.Context, stream string, version int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, eventstore.ErrClosed
	}
	ls, list := b.snapshots[stream], b.current(stream)
	if version < 0 {
		delete(b.snapshots, stream)
		return len(list), nil
	}
	i, found := slices.BinarySearchFunc(list, version, bySnapshotVersion)
	if !found {
		return 0, nil
	}
	ls.list = slices.Delete(list, i, i+1)
	b.snapshots[stream] = ls
	return 1, nil
}
