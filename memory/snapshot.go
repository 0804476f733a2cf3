package memory

import (
	"cmp"
	"context"
	"slices"

	"github.com/edge-es/eventstore"
)

var _ eventstore.Snapshotter = (*Backend)(nil)

// SaveSnapshot implements [eventstore.Snapshotter].
func (b *Backend) SaveSnapshot(ctx context.Context, s eventstore.Snapshot, keep int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.snapshots == nil {
		b.snapshots = make(map[string][]eventstore.Snapshot)
	}
	s.Data, s.Metadata = clone(s.Data), clone(s.Metadata)
	list := b.snapshots[s.StreamID]
	i, found := slices.BinarySearchFunc(list, s.Version, bySnapshotVersion)
	if found {
		list[i] = s
	} else {
		list = slices.Insert(list, i, s)
	}
	if keep > 0 && len(list) > keep {
		list = slices.Delete(list, 0, len(list)-keep)
	}
	b.snapshots[s.StreamID] = list
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
	list := b.snapshots[stream]
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
	out := slices.Clone(b.snapshots[stream])
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
	list := b.snapshots[stream]
	if version < 0 {
		delete(b.snapshots, stream)
		return len(list), nil
	}
	i, found := slices.BinarySearchFunc(list, version, bySnapshotVersion)
	if !found {
		return 0, nil
	}
	b.snapshots[stream] = slices.Delete(list, i, i+1)
	return 1, nil
}
