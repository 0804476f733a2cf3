package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// consumerState is what the backend keeps for one consumer key.
type consumerState struct {
	checkpoint eventstore.Checkpoint
	saved      bool
	processed  map[uuid.UUID]int64 // event ID -> position
	parked     []eventstore.ParkedEvent

	owner   string // holder of the claim; empty when unclaimed
	expires time.Time
}

// consumer returns the state of key, creating it.
func (d *data) consumer(key string) *consumerState {
	if d.consumers == nil {
		d.consumers = make(map[string]*consumerState)
	}
	c := d.consumers[key]
	if c == nil {
		c = &consumerState{checkpoint: eventstore.Checkpoint{Key: key}, processed: make(map[uuid.UUID]int64)}
		d.consumers[key] = c
	}
	return c
}

// LoadCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) LoadCheckpoint(ctx context.Context, key string) (int64, bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, false, eventstore.ErrClosed
	}
	c := b.consumers[key]
	if c == nil || !c.saved {
		return 0, false, nil
	}
	return c.checkpoint.Position, true, nil
}

// SaveCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) SaveCheckpoint(ctx context.Context, key string, position int64, at time.Time) error {
	return b.setCheckpoint(ctx, key, position, at, false)
}

// ResetCheckpoint implements [eventstore.Checkpointer].
func (b *Backend) ResetCheckpoint(ctx context.Context, key string, position int64, at time.Time) error {
	return b.setCheckpoint(ctx, key, position, at, true)
}

func (b *Backend) setCheckpoint(ctx context.Context, key string, position int64, at time.Time, reset bool) error {
	return b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		d.setCheckpoint(key, position, at, reset)
		return nil
	})
}

func (d *data) setCheckpoint(key string, position int64, at time.Time, reset bool) {
	c := d.consumer(key)
	if !reset && c.saved {
		position = max(position, c.checkpoint.Position) // a save never lowers it
	}
	c.checkpoint.Position, c.checkpoint.UpdatedAt, c.saved = position, at.UTC(), true
	for id, p := range c.processed {
		if reset || p <= position {
			delete(c.processed, id)
		}
	}
}

// Checkpoints implements [eventstore.Checkpointer].
func (b *Backend) Checkpoints(ctx context.Context) ([]eventstore.Checkpoint, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, eventstore.ErrClosed
	}
	var out []eventstore.Checkpoint
	for _, key := range slices.Sorted(maps.Keys(b.consumers)) {
		if c := b.consumers[key]; c.saved {
			out = append(out, c.checkpoint)
		}
	}
	return out, nil
}

// MarkProcessed implements [eventstore.Checkpointer].
func (b *Backend) MarkProcessed(ctx context.Context, key string, id uuid.UUID, position int64) error {
	return b.write(ctx, func(d *data) error {
		d.consumer(key).processed[id] = position
		return nil
	})
}

// Processed implements [eventstore.Checkpointer].
func (b *Backend) Processed(ctx context.Context, key string, id uuid.UUID) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false, eventstore.ErrClosed
	}
	c := b.consumers[key]
	if c == nil {
		return false, nil
	}
	_, ok := c.processed[id]
	return ok, nil
}

// Park implements [eventstore.Parker].
func (b *Backend) Park(ctx context.Context, key string, p eventstore.ParkedEvent) error {
	return b.write(ctx, func(d *data) error {
		c := d.consumer(key)
		i, found := slices.BinarySearchFunc(c.parked, p.Position, func(x eventstore.ParkedEvent, pos int64) int {
			return cmp.Compare(x.Position, pos)
		})
		if found {
			c.parked[i] = p
		} else {
			c.parked = slices.Insert(c.parked, i, p)
		}
		return nil
	})
}

// Unpark implements [eventstore.Parker].
func (b *Backend) Unpark(ctx context.Context, key string, position int64) (bool, error) {
	var found bool
	err := b.write(ctx, func(d *data) error {
		c := d.consumer(key)
		n := len(c.parked)
		c.parked = slices.DeleteFunc(c.parked, func(p eventstore.ParkedEvent) bool { return p.Position == position })
		found = len(c.parked) < n
		return nil
	})
	return found, err
}

// Parked implements [eventstore.Parker].
func (b *Backend) Parked(ctx context.Context, key string) ([]eventstore.ParkedEvent, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, eventstore.ErrClosed
	}
	if c := b.consumers[key]; c != nil {
		return slices.Clone(c.parked), nil
	}
	return nil, nil
}

// Claim implements [eventstore.Claimer]. Nothing outlives the
// process here, so a claim lapses only by its expiry.
func (b *Backend) Claim(ctx context.Context, key, owner string, now, expires time.Time) error {
	return b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		c := d.consumer(key)
		if c.owner != "" && c.owner != owner && now.Before(c.expires) {
			return fmt.Errorf("%w: %s is claimed by another instance until %s", eventstore.ErrConsumerRunning, key, c.expires.UTC().Format(time.RFC3339Nano))
		}
		c.owner, c.expires = owner, expires
		return nil
	})
}

// Release implements [eventstore.Claimer].
func (b *Backend) Release(ctx context.Context, key, owner string) error {
	return b.write(ctx, func(d *data) error {
		if c := d.consumers[key]; c != nil && c.owner == owner {
			c.owner, c.expires = "", time.Time{}
		}
		return nil
	})
}
