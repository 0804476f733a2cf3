package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Snapshot is the state of a stream as of one of its versions, stored so
// that loading the stream can start there instead of at version 0.
type Snapshot struct {
	StreamID string
	Version  int64 // the last version the state includes
	// Position is the global position of the event at Version, which
	// identifies the life of the stream the snapshot was taken of. The
	// backend sets it when it saves the snapshot.
	Position  int64
	Data      []byte
	Metadata  []byte
	CreatedAt time.Time
}

func (s *Store) snapshotter(stream string) (Snapshotter, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateStreamID(stream); err != nil {
		return nil, err
	}
	return s.backend, nil
}

// SaveSnapshot stores the state of a stream as of version, replacing a
// snapshot of the same version. version must be an existing version of the
// stream: a snapshot ahead of its stream is [ErrInvalidArgument]. A stream
// that does not exist, or is deleted before the snapshot is written, is
// [ErrStreamNotFound] (the error matches [ErrInvalidArgument] too): a
// snapshot never outlives the life of the stream it was taken of. With
// [Options.SnapshotRetention] set, older snapshots beyond that many are
// deleted.
func (s *Store) SaveSnapshot(ctx context.Context, stream string, version int64, data, metadata []byte) error {
	return s.saveSnapshot(ctx, Snapshot{StreamID: stream, Version: version, Data: data, Metadata: metadata})
}

// saveSnapshot saves snap. A positive snap.Position pins it to the life of
// the stream that holds the event at that position: the [Repository] saves
// the state after its append that way, so that a stream deleted and
// started again since gets no snapshot of its earlier life.
func (s *Store) saveSnapshot(ctx context.Context, snap Snapshot) error {
	stream, version := snap.StreamID, snap.Version
	sn, err := s.snapshotter(stream)
	if err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	if version < 0 {
		return fmt.Errorf("save snapshot %s: %w", stream, invalidf("version %d", version))
	}
	snap.CreatedAt = s.now()
	end := s.begin(ctx, "save_snapshot", stream)
	err = sn.SaveSnapshot(ctx, snap, s.opts.SnapshotRetention)
	end(Outcome{Err: err})
	if errors.Is(err, ErrStreamNotFound) && !errors.Is(err, ErrInvalidArgument) {
		// Before the check moved into the backend's write, a missing
		// stream was only ErrInvalidArgument: callers may test for it.
		err = fmt.Errorf("%w (%w)", err, ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("save snapshot %s: %w", stream, err)
	}
	s.counters.snapshotsSaved.Add(1)
	s.happened(ctx, Happening{Category: CategoryPersistence, Name: "snapshot.saved", Stream: stream, Position: version})
	return nil
}

// LoadSnapshot returns the stream's snapshot of the highest version, or
// [ErrSnapshotNotFound].
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (Snapshot, error) {
	return s.loadSnapshot(ctx, stream, -1)
}

// LoadSnapshotAt returns the stream's snapshot of exactly version, or
// [ErrSnapshotNotFound].
func (s *Store) LoadSnapshotAt(ctx context.Context, stream string, version int64) (Snapshot, error) {
	if version < 0 {
		return Snapshot{}, fmt.Errorf("load snapshot %s: %w", stream, invalidf("version %d", version))
	}
	return s.loadSnapshot(ctx, stream, version)
}

func (s *Store) loadSnapshot(ctx context.Context, stream string, version int64) (Snapshot, error) {
	sn, err := s.snapshotter(stream)
	if err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot: %w", err)
	}
	snap, err := sn.LoadSnapshot(ctx, stream, version)
	if err != nil {
		return Snapshot{}, fmt.Errorf("load snapshot %s: %w", stream, err)
	}
	return snap, nil
}

// ListSnapshots returns the stream's snapshots in ascending version.
func (s *Store) ListSnapshots(ctx context.Context, stream string) ([]Snapshot, error) {
	sn, err := s.snapshotter(stream)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	return sn.ListSnapshots(ctx, stream)
}

// SnapshotExists reports whether the stream has any snapshot.
func (s *Store) SnapshotExists(ctx context.Context, stream string) (bool, error) {
	_, err := s.LoadSnapshot(ctx, stream)
	if errors.Is(err, ErrSnapshotNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteSnapshots deletes all the stream's snapshots; it is not an error
// when there are none.
func (s *Store) DeleteSnapshots(ctx context.Context, stream string) error {
	sn, err := s.snapshotter(stream)
	if err != nil {
		return fmt.Errorf("delete snapshots: %w", err)
	}
	_, err = sn.DeleteSnapshots(ctx, stream, -1)
	return err
}

// DeleteSnapshotAt deletes the stream's snapshot of version, or returns
// [ErrSnapshotNotFound].
func (s *Store) DeleteSnapshotAt(ctx context.Context, stream string, version int64) error {
	sn, err := s.snapshotter(stream)
	if err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	if version < 0 {
		return fmt.Errorf("delete snapshot %s: %w", stream, invalidf("version %d", version))
	}
	n, err := sn.DeleteSnapshots(ctx, stream, version)
	if err == nil && n == 0 {
		err = ErrSnapshotNotFound
	}
	if err != nil {
		return fmt.Errorf("delete snapshot %s@%d: %w", stream, version, err)
	}
	return nil
}
