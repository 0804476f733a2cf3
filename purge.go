package eventstore

import (
	"context"
	"fmt"
)

// PurgeStream erases a stream for good: unlike [Store.DeleteStream], its
// events leave the global log too, with its snapshots, idempotency keys
// and parked events, and it returns how many events it removed. The
// positions of the erased events are never used again, so consumers and
// subscriptions just see a gap and go on. A tombstone stays behind, so
// that a late writer cannot bring the stream back by accident: Appends to
// it fail with [ErrStreamPurged] until [Store.RemoveTombstone].
//
// On SQLite the freed pages are reused by later writes; a VACUUM (or a
// backup) gives the space back to the file system.
func (s *Store) PurgeStream(ctx context.Context, stream string) (int64, error) {
	p, err := s.purger(stream)
	if err != nil {
		return 0, fmt.Errorf("purge stream: %w", err)
	}
	end := s.begin(ctx, "purge_stream", stream)
	n, err := p.PurgeStream(ctx, stream)
	end(Outcome{Events: int(n), Err: err})
	if err != nil {
		return 0, fmt.Errorf("purge stream %s: %w", stream, err)
	}
	return n, nil
}

// RemoveTombstone lets a purged stream be started again at version 0.
func (s *Store) RemoveTombstone(ctx context.Context, stream string) error {
	p, err := s.purger(stream)
	if err != nil {
		return fmt.Errorf("remove tombstone: %w", err)
	}
	if err := p.RemoveTombstone(ctx, stream); err != nil {
		return fmt.Errorf("remove tombstone %s: %w", stream, err)
	}
	return nil
}

func (s *Store) purger(stream string) (Purger, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ValidateStreamID(stream); err != nil {
		return nil, err
	}
	return s.backend, nil
}
