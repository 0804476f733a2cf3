package eventstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// waitForPoll is how often [Store.WaitFor] reads the checkpoints again
// without a save in this process to wake it: the checkpoints saved by
// consumers in other processes sharing the store.
const waitForPoll = 100 * time.Millisecond

// progressBoard is what a Store knows of its running consumers: whether
// each is caught up, and a wake-up for every checkpoint saved.
type progressBoard struct {
	mu       sync.Mutex
	caught   map[string]bool // by consumer key, while it runs
	savedNow chan struct{}   // closed at the next checkpoint saved
}

func (p *progressBoard) set(key string, caught bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.caught == nil {
		p.caught = make(map[string]bool)
	}
	p.caught[key] = caught
}

func (p *progressBoard) remove(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.caught, key)
}

func (p *progressBoard) caughtUp(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caught[key]
}

// saved wakes every WaitFor: a checkpoint was saved.
func (p *progressBoard) saved() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.savedNow != nil {
		close(p.savedNow)
		p.savedNow = nil
	}
}

// next returns a channel closed at the next checkpoint saved.
func (p *progressBoard) next() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.savedNow == nil {
		p.savedNow = make(chan struct{})
	}
	return p.savedNow
}

// WaitFor returns once the consumer named consumer has checkpointed at or
// past position, or when ctx ends, with ctx's error: read-your-writes for
// a projection. Append, then WaitFor the projection's consumer with the
// [AppendResult.Position], then read the projection: it shows the append.
// For a consumer group, every member must have passed position (the
// members of the largest group size that has checkpoints); a
// forwarder is waited for by its checkpoint key, "outbox/" and its name.
//
// A consumer's checkpoint moves past the events it skips as well as those
// it handles, so WaitFor returns for a position the consumer's filter does
// not match too, once the consumer has passed it (with
// [ConsumerOptions.CheckpointEvery] above 1, the checkpoint may follow up
// to that many events later, or at [ConsumerOptions.CheckpointInterval]).
//
// A consumer that has no checkpoint yet (it has not started, or has not
// passed any event), or a group of which some members have none, is
// waited for: WaitFor returns once it has started and passed position.
// WaitFor wakes at every checkpoint saved through this Store, and also
// reads the checkpoints every 100ms, for consumers running in another
// process on the same store. An invalid name or a negative position is
// [ErrInvalidArgument].
func (s *Store) WaitFor(ctx context.Context, consumer string, position int64) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := validateName("consumer name", consumer, MaxStreamIDLen); err != nil {
		return fmt.Errorf("wait for: %w", err)
	}
	if position < 0 {
		return fmt.Errorf("wait for %s: %w", consumer, invalidf("position %d", position))
	}
	poll := time.NewTicker(waitForPoll)
	defer poll.Stop()
	for {
		saved := s.running.next() // before reading: a save after it wakes us
		all, err := s.backend.Checkpoints(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("wait for %s: %w", consumer, err)
		}
		if passed(all, consumer, position) {
			return nil
		}
		select {
		case <-saved:
		case <-poll.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := s.checkOpen(); err != nil {
			return err
		}
	}
}

// passed reports whether the checkpoints of name are all at or past
// position: those of every member of its group, of the largest group size
// found (the members of an earlier size are left behind), or its own when
// it runs without a group.
func passed(all []Checkpoint, name string, position int64) bool {
	own := int64(-1)
	size := 0
	members := map[int]int64{}
	for _, c := range all {
		if c.Key == name {
			own = c.Position
			continue
		}
		m, n, ok := groupKey(c.Key, name)
		if !ok || n < size {
			continue
		}
		if n > size {
			size = n
			clear(members)
		}
		members[m] = c.Position
	}
	if size == 0 {
		return own >= position && own >= 0
	}
	if len(members) < size {
		return false
	}
	for _, p := range members {
		if p < position {
			return false
		}
	}
	return true
}

// groupKey parses "name[m/n]", the [ConsumerKey] of a group member.
func groupKey(key, name string) (member, size int, ok bool) {
	rest, ok := strings.CutPrefix(key, name+"[")
	if !ok {
		return 0, 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, 0, false
	}
	ms, ns, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	m, err1 := strconv.Atoi(ms)
	n, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil || m < 0 || n < 1 || m >= n {
		return 0, 0, false
	}
	return m, n, true
}
