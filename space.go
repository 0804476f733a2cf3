package eventstore

import (
	"context"
	"fmt"
)

// ReclaimSpace gives the room of removed events (purged streams, pruned
// events) back to the file system, when the backend keeps it until asked
// ([SpaceReclaimer]; the SQLite backend does), and returns how many bytes
// the storage shrank by. Writers go on meanwhile: each waits at most for
// one short step of it. Without it, removed events' room is still used
// again by later events, so storage stops growing but does not shrink. A
// backend without the capability has nothing to give back: 0, nil.
func (s *Store) ReclaimSpace(ctx context.Context) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if s.caps.reclaimer == nil {
		return 0, nil
	}
	end := s.begin(ctx, "reclaim_space", "")
	n, err := s.caps.reclaimer.ReclaimSpace(ctx)
	end(Outcome{Err: err})
	if err != nil {
		return n, fmt.Errorf("reclaim space: %w", err)
	}
	return n, nil
}
