package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/edge-es/eventstore"
)

// lifeSnapshots are a stream's snapshots in ascending version, with the
// life of the stream they were taken of.
type lifeSnapshots struct {
	life *lifeID
	list []eventstore.Snapshot
}

// current returns the snapshots of stream's current life, or nil.
func (d *data) current(streamID string) []eventstore.Snapshot {
	ls := d.snapshots[streamID]
	if s := d.streams[streamID]; s == nil || ls.life != s.life {
		return nil
	}
	return ls.list
}

// SaveSnapshot implements [eventstore.Snapshotter]. The stream's check and
// the write happen under one lock, which DeleteStream takes too.
func (b *Backend) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot, keep int) error {
	return b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return d.saveSnapshot(snap, keep)
	})
}

func (d *data) saveSnapshot(snap eventstore.Snapshot, keep int) error {
	s := d.streams[snap.StreamID]
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
	if d.snapshots == nil {
		d.snapshots = make(map[string]lifeSnapshots)
	}
	snap.Data, snap.Metadata = clone(snap.Data), clone(snap.Metadata)
	list := d.current(snap.StreamID) // an earlier life's snapshots are dropped
	i, found := slices.BinarySearchFunc(list, snap.Version, bySnapshotVersion)
	if found {
		list[i] = snap
	} else {
		list = slices.Insert(list, i, snap)
	}
	if keep > 0 && len(list) > keep {
		list = slices.Delete(list, 0, len(list)-keep)
	}
	d.snapshots[snap.StreamID] = lifeSnapshots{life: s.life, list: list}
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
	n := 0
	err := b.write(ctx, func(d *data) error {
		ls, list := d.snapshots[stream], d.current(stream)
		if version < 0 {
			delete(d.snapshots, stream)
			n = len(list)
			return nil
		}
		i, found := slices.BinarySearchFunc(list, version, bySnapshotVersion)
		if !found {
			return nil
		}
		ls.list = slices.Delete(list, i, i+1)
		d.snapshots[stream] = ls
		n = 1
		return nil
	})
	return n, err
}
