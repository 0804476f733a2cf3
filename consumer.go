package eventstore

import (
	"context"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Checkpoint is a consumer's stored progress.
type Checkpoint struct {
	Key       string    // consumer key, see [ConsumerKey]
	Position  int64     // last position processed
	UpdatedAt time.Time // when it was last saved, by [Options.Clock]
}

// ParkedEvent is an event a consumer gave up on after
// [ConsumerOptions.ParkAfter] failed attempts.
type ParkedEvent struct {
	Position int64
	EventID  uuid.UUID
	StreamID string
	Error    string // the last handler error
	// Attempts counts the failed attempts before it was parked; 0 means
	// that [Store.RetryParked] asked for it to be handled again, which the
	// consumer does when it next starts.
	Attempts int
	ParkedAt time.Time
}

// ConsumerInfo describes a consumer for [Store.Consumers].
type ConsumerInfo struct {
	Checkpoint
	// Lag is how many positions of the global log lie past the checkpoint.
	// The checkpoint moves past the events the consumer skips (those of
	// other group members, and those its filter does not match) as well as
	// past those it handles, so Lag reaches 0 once nothing is left to
	// handle, give or take [ConsumerOptions.CheckpointEvery].
	Lag int64
	// CaughtUp is true when the consumer has nothing left to handle: its
	// Lag is 0, or it runs in this process (on this Store) and has handled
	// every matching event up to the end of the log and kept up since, as
	// [Subscription.CaughtUp]; the hooks report its changes as
	// "consumer.caught_up" and "consumer.fell_behind". A consumer that runs
	// in another process is seen only through its checkpoint: CaughtUp is
	// then Lag == 0.
	CaughtUp bool
}

// Group makes a consumer one member of a consumer group: the members
// share out the streams, each event going to exactly one of them.
type Group struct {
	Member int // this member, 0 <= Member < Size
	Size   int // how many members the group has, at most 1,000,000
}

// GroupMember returns which member of a group of size members owns a
// stream: Message DB's hash of the stream's cardinal ID (the first 8 bytes
// of its MD5 as a big-endian int64, absolute value, modulo size). So
// "account-1+a" and "account-1+b" go to the same member. A stream ID
// without a cardinal ID is hashed whole.
func GroupMember(stream string, size int) int {
	if size <= 1 {
		return 0
	}
	id := CardinalID(stream)
	if id == "" {
		id = stream
	}
	sum := md5.Sum([]byte(id))
	h := int64(binary.BigEndian.Uint64(sum[:8]))
	u := uint64(h)
	if h < 0 {
		u = uint64(-h) // wraps for MinInt64 to 1<<63, its true absolute value
	}
	return int(u % uint64(size))
}

// ConsumerKey returns the checkpoint key of a consumer: its name, or
// "name[member/size]" for a member of a group.
func ConsumerKey(name string, g Group) string {
	if g.Size <= 1 {
		return name
	}
	return fmt.Sprintf("%s[%d/%d]", name, g.Member, g.Size)
}

// ConsumerOptions configure [Store.Consume]. Name and Handler are
// required; every other field has a default.
type ConsumerOptions struct {
	// Name identifies the consumer and its checkpoint across restarts.
	Name string
	// Filter selects the events to handle. Default: all.
	Filter Filter
	// Handler processes one event. An error (or a panic) is retried with
	// backoff. Exactly one of Handler and TxHandler is set.
	Handler func(ctx context.Context, e RecordedEvent) error
	// TxHandler, instead of Handler, makes the consumer exactly-once on a
	// backend that implements [Transactor]: each call runs inside the
	// transaction that saves the checkpoint, found in ctx (sqlite.Tx), and
	// its writes commit with the checkpoint or not at all, Appends through
	// the Store with its ctx included (so a process manager's decisions and
	// its progress commit together).
	TxHandler func(ctx context.Context, e RecordedEvent) error
	// Group makes the consumer one member of a consumer group. Default:
	// no group, the consumer handles every event.
	Group Group
	// From is where a consumer without a checkpoint starts, as in
	// [SubscribeOptions.From]. Default: the start of the log.
	From int64
	// CheckpointEvery saves the checkpoint after this many events.
	// Default: 1, after every event. A larger value writes less, and after
	// a crash redelivers up to that many events, unless Deduplicate is set.
	// At most 1,000,000.
	CheckpointEvery int
	// CheckpointInterval, when positive, also saves the checkpoint when it
	// is this old and has moved. Default: 0, by count only. At most 24h.
	CheckpointInterval time.Duration
	// Deduplicate records each handled event's ID, so that an event
	// redelivered after a crash (between handler and checkpoint) is skipped.
	// It costs a write per event. Default: false.
	Deduplicate bool
	// MinBackoff is the first wait after a handler error. Default: 100ms;
	// at most 24h.
	MinBackoff time.Duration
	// MaxBackoff caps the wait, which doubles after each failed attempt,
	// with jitter. Default: 30s; at most 24h.
	MaxBackoff time.Duration
	// ParkAfter, when positive, parks an event after this many failed
	// attempts and goes on with the next one; [Store.Parked] lists them.
	// Default: 0, retry until it succeeds or ctx ends. At most 1,000,000.
	ParkAfter int
	// OnError is called after every failed attempt, with the attempt
	// number (from 1) and whether the event was parked. Default: none.
	OnError func(e RecordedEvent, err error, attempt int, parked bool)
	// Buffer is the read-ahead of the underlying subscription. Default: 128;
	// at most [MaxBuffer].
	Buffer int
	// Lease is how long the consumer's claim outlives its last renewal:
	// while it runs, the consumer renews its claim every Lease/3, and a
	// second instance of it (same name and group member, in this process or
	// another on the same store) fails with [ErrConsumerRunning]. When the
	// process dies without releasing the claim, the claim lapses after
	// Lease, and a restart can run. On Linux the SQLite backend also
	// notices at once that the holding process is gone, so a restart after
	// kill -9 is not held up at all; elsewhere it waits up to Lease.
	// Default: [DefaultLease]. At most [MaxLease].
	Lease time.Duration
}

// DefaultLease is the default of [ConsumerOptions.Lease] and
// [ForwarderOptions.Lease]: long enough that a busy machine keeps renewing
// in time, short enough that a restart after a crash is not held up for
// long.
const DefaultLease = 15 * time.Second

// MaxLease is the longest [ConsumerOptions.Lease] and
// [ForwarderOptions.Lease]; a longer one is [ErrInvalidArgument].
const MaxLease = 24 * time.Hour

func (o *ConsumerOptions) validate(tx bool) error {
	if err := validateName("consumer name", o.Name, MaxStreamIDLen); err != nil {
		return err
	}
	if strings.ContainsAny(o.Name, "[]") {
		return invalidf("consumer name %q: '[' and ']' are reserved for group members", o.Name)
	}
	if strings.HasPrefix(o.Name, forwarderPrefix) {
		return invalidf("consumer name %q: the prefix %q is reserved for forwarders", o.Name, forwarderPrefix)
	}
	if (o.Handler == nil) == (o.TxHandler == nil) {
		return invalidf("consumer %s: set exactly one of Handler and TxHandler", o.Name)
	}
	if o.TxHandler != nil && !tx {
		return fmt.Errorf("consumer %s: TxHandler: the backend cannot run a handler in its transaction: %w", o.Name, errors.ErrUnsupported)
	}
	if o.Group.Size < 0 || (o.Group.Size > 0 && (o.Group.Member < 0 || o.Group.Member >= o.Group.Size)) ||
		(o.Group.Size == 0 && o.Group.Member != 0) {
		return invalidf("consumer %s: group member %d of %d", o.Name, o.Group.Member, o.Group.Size)
	}
	if o.From < FromNow || o.CheckpointEvery < 0 || o.CheckpointInterval < 0 ||
		o.MinBackoff < 0 || o.MaxBackoff < 0 || o.ParkAfter < 0 || o.Buffer < 0 || o.Lease < 0 {
		return invalidf("consumer %s: negative option", o.Name)
	}
	if err := firstError(
		atMost("buffer", o.Buffer, MaxBuffer),
		atMost("checkpoint every", o.CheckpointEvery, maxCount),
		atMost("park after", o.ParkAfter, maxCount),
		atMost("group size", o.Group.Size, maxCount),
		atMost("checkpoint interval", o.CheckpointInterval, maxWait),
		atMost("min backoff", o.MinBackoff, maxWait),
		atMost("max backoff", o.MaxBackoff, maxWait),
		atMost("lease", o.Lease, MaxLease),
	); err != nil {
		return fmt.Errorf("consumer %s: %w", o.Name, err)
	}
	filter, err := o.Filter.withMatcher()
	if err != nil {
		return err
	}
	o.Filter = filter
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = 1
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	backoffDefaults(&o.MinBackoff, &o.MaxBackoff)
	return nil
}

// backoffDefaults fills in the documented backoff bounds of consumers and
// forwarders: 100ms first, capped at 30s, and never a cap below the first
// wait.
func backoffDefaults(first, limit *time.Duration) {
	if *first == 0 {
		*first = 100 * time.Millisecond
	}
	if *limit == 0 {
		*limit = 30 * time.Second
	}
	*limit = max(*limit, *first)
}

// Consume runs a durable consumer until ctx ends, then returns ctx's
// error (or the error that stopped it: an invalid option, a closed store, a
// storage failure). Run it in a goroutine of its own.
//
// The consumer resumes after its stored checkpoint, or starts at
// opts.From, and hands each matching event to the handler in position
// order: catch-up, then live, as a subscription. Delivery is at least
// once: the checkpoint moves only after the handler returns nil, so after a
// crash the events past the checkpoint are handled again, unless
// Deduplicate skips them, or the TxHandler commits with the checkpoint
// (exactly once). A failing or panicking handler is retried with
// exponential backoff and jitter; with ParkAfter the event is parked after
// that many attempts and the consumer goes on. A member of a consumer group
// handles only the events of the streams it owns ([GroupMember]), but its
// checkpoint moves past the others too, so no member stalls.
//
// Only one instance of a consumer (one name and group member) runs at a
// time, in this process or in any other on the same store: Consume first
// claims the consumer, and fails at once with [ErrConsumerRunning] while
// another instance holds it. The claim is renewed while the consumer runs,
// released when it stops, and lapses after [ConsumerOptions.Lease] when its
// process dies. Should another instance take it over all the same (this
// process stalled for longer than the lease), Consume stops with
// [ErrConsumerRunning]; should renewing fail until the lease has run out,
// it stops with the renewal's error. A consumer name must not begin with
// "outbox/": those keys are the forwarders'.
func (s *Store) Consume(ctx context.Context, opts ConsumerOptions) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := opts.validate(s.caps.tx != nil); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	key := ConsumerKey(opts.Name, opts.Group)
	cctx, release, err := s.claim(ctx, s.backend, key, opts.Lease)
	if err != nil {
		return fmt.Errorf("consume %s: %w", key, err)
	}
	defer release()
	c := &consumer{store: s, cp: s.backend, txcp: s.caps.tx, opts: opts, key: key}
	err = c.run(cctx)
	if ctx.Err() == nil && cctx.Err() != nil { // the claim was lost
		return fmt.Errorf("consume %s: %w", key, context.Cause(cctx))
	}
	return err
}

// forwarderPrefix begins the checkpoint key of every [Forwarder]; consumer
// names may not begin with it, so the two never share a checkpoint.
const forwarderPrefix = "outbox/"

// claim claims key for owner as a running consumer or forwarder, and keeps
// renewing the claim every lease/3 until release is called. The context it
// returns ends when the claim is lost, with a cause that matches
// [ErrConsumerRunning] (another instance took it over) or says why it could
// not be renewed before it lapsed. release stops the renewals and releases
// the claim.
func (s *Store) claim(ctx context.Context, cp Backend, key string, lease time.Duration) (context.Context, func(), error) {
	// Random, not s.newID(): the owner must differ between instances even
	// when the store's ID generator is deterministic.
	owner := uuid.NewString()
	now := s.now()
	if err := cp.Claim(ctx, key, owner, now, now.Add(lease)); err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithCancelCause(ctx)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(max(lease/3, time.Millisecond))
		defer t.Stop()
		expires := now.Add(lease)
		for {
			select {
			case <-t.C:
			case <-cctx.Done():
				return
			}
			now := s.now()
			err := cp.Claim(cctx, key, owner, now, now.Add(lease))
			switch {
			case err == nil:
				expires = now.Add(lease)
			case cctx.Err() != nil:
				return
			case errors.Is(err, ErrConsumerRunning):
				cancel(fmt.Errorf("claim lost: %w", err))
				return
			case !now.Before(expires):
				cancel(fmt.Errorf("claim lapsed: renew: %w", err))
				return
			}
		}
	}()
	release := func() {
		cancel(nil) // a cause set before stays: the first one counts
		<-stopped
		// Released even when ctx has ended; should it fail, the claim
		// lapses on its own.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_ = cp.Release(rctx, key, owner)
	}
	return cctx, release, nil
}

type consumer struct {
	store *Store
	cp    Backend
	txcp  Transactor // nil when the backend has no transactions
	opts  ConsumerOptions
	key   string

	position  int64 // last position passed (handled, skipped or parked)
	saved     int64 // last position saved as the checkpoint
	pending   int   // events passed since the last save
	savedTime time.Time
	caughtUp  bool
}

func (c *consumer) run(ctx context.Context) (err error) {
	pos, ok, err := c.cp.LoadCheckpoint(ctx, c.key)
	if err != nil {
		return fmt.Errorf("consume %s: load checkpoint: %w", c.key, err)
	}
	if err := c.retryParked(ctx); err != nil {
		return err
	}
	from := pos + 1
	if !ok {
		from = c.opts.From
	}
	sub, err := c.store.subscribe(ctx, SubscribeOptions{From: from, Filter: c.opts.Filter, Buffer: c.opts.Buffer}, c.key)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.key, err)
	}
	defer sub.Close()
	c.store.running.set(c.key, false)
	defer c.store.running.remove(c.key)
	c.position, c.saved, c.savedTime = pos, pos, time.Now()
	defer func() {
		// Keep what was done: the last checkpoint is saved even when ctx
		// has ended, with a deadline of its own.
		if c.position > c.saved {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			serr := c.cp.SaveCheckpoint(sctx, c.key, c.position, c.store.now())
			if serr != nil && err == nil {
				err = fmt.Errorf("consume %s: save checkpoint: %w", c.key, serr)
			}
			if serr == nil {
				c.checkpointed(ctx, c.position)
			}
		}
	}()

	var tick <-chan time.Time
	if c.opts.CheckpointInterval > 0 {
		t := time.NewTicker(c.opts.CheckpointInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); err != nil {
					return fmt.Errorf("consume %s: %w", c.key, err)
				}
				return ctx.Err()
			}
			if err := c.handle(ctx, e); err != nil {
				return err
			}
			if err := c.advance(ctx, sub); err != nil {
				return err
			}
		case <-sub.progress:
			if err := c.advance(ctx, sub); err != nil {
				return err
			}
		case <-tick:
			if err := c.maybeSave(ctx, true); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryParked handles the parked events that [Store.RetryParked] marked,
// in position order, and forgets each one handled. One that fails is
// parked again by attempt; one no longer in the log (purged) is forgotten.
func (c *consumer) retryParked(ctx context.Context) error {
	parked, err := c.cp.Parked(ctx, c.key)
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.key, err)
	}
	for _, p := range parked {
		if p.Attempts != 0 {
			continue
		}
		var e *RecordedEvent
		for ev, err := range c.store.ReadAll(ctx, ReadOptions{From: p.Position, Limit: 1}, Filter{}) {
			if err != nil {
				return fmt.Errorf("consume %s: retry %d: %w", c.key, p.Position, err)
			}
			if ev.Position == p.Position && ev.ID == p.EventID {
				e = &ev
			}
		}
		if e != nil {
			_, parkedAgain, err := c.attempt(ctx, *e)
			if err != nil || parkedAgain {
				if err != nil {
					return err
				}
				continue
			}
		}
		// Kept even when ctx has ended meanwhile, as the last checkpoint
		// is: the event was handled.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := c.cp.Unpark(uctx, c.key, p.Position)
		cancel()
		if err != nil {
			return fmt.Errorf("consume %s: unpark %d: %w", c.key, p.Position, err)
		}
	}
	return nil
}

// handle processes one delivered event and moves the position past it.
func (c *consumer) handle(ctx context.Context, e RecordedEvent) error {
	mine := c.opts.Group.Size <= 1 || GroupMember(e.StreamID, c.opts.Group.Size) == c.opts.Group.Member
	if mine && c.opts.Deduplicate {
		done, err := c.cp.Processed(ctx, c.key, e.ID)
		if err != nil {
			return fmt.Errorf("consume %s: %w", c.key, err)
		}
		mine = !done
	}
	if mine {
		committed, _, err := c.attempt(ctx, e)
		if err != nil {
			return err
		}
		if committed { // the TxHandler's transaction saved the checkpoint
			c.position, c.saved, c.pending, c.savedTime = e.Position, e.Position, 0, time.Now()
			c.checkpointed(ctx, e.Position)
			return nil
		}
		if c.opts.Deduplicate {
			if err := c.cp.MarkProcessed(ctx, c.key, e.ID, e.Position); err != nil {
				return fmt.Errorf("consume %s: %w", c.key, err)
			}
		}
	}
	c.position = e.Position
	c.pending++
	return c.maybeSave(ctx, false)
}

// advance moves the position past what the subscription has passed over
// without an event for the consumer (the events its filter skips), once
// every event it sent has been handled, and keeps the consumer's
// caught-up state.
func (c *consumer) advance(ctx context.Context, sub *Subscription) error {
	// In this order: the subscription stores its position before it
	// reports being caught up, and puts its events on the channel before
	// it stores the position, so an empty channel after these reads means
	// every event up to scanned has been handled.
	caught := sub.isCaughtUp()
	scanned := sub.Position()
	if !caught {
		c.setCaughtUp(ctx, false)
	}
	if len(sub.events) > 0 {
		return nil
	}
	if scanned > c.position {
		c.position = scanned
		c.pending++
		if err := c.maybeSave(ctx, false); err != nil {
			return err
		}
	}
	if caught {
		c.setCaughtUp(ctx, true)
	}
	return nil
}

// setCaughtUp records the consumer's caught-up state for
// [Store.Consumers], and reports its changes to the hooks.
func (c *consumer) setCaughtUp(ctx context.Context, caught bool) {
	if c.caughtUp == caught {
		return
	}
	c.caughtUp = caught
	c.store.running.set(c.key, caught)
	name := "consumer.fell_behind"
	if caught {
		name = "consumer.caught_up"
	}
	c.store.happened(ctx, Happening{Category: CategorySubscriptions, Name: name, Consumer: c.key, Position: c.position})
}

// attempt runs the handler until it succeeds, the event is parked, or ctx
// ends. committed reports that a TxHandler's transaction saved the
// checkpoint, parked that the event was parked.
func (c *consumer) attempt(ctx context.Context, e RecordedEvent) (committed, parked bool, err error) {
	for attempt := 1; ; attempt++ {
		herr := c.call(ctx, e)
		if herr == nil {
			return c.opts.TxHandler != nil, false, nil
		}
		if ctx.Err() != nil {
			return false, false, ctx.Err()
		}
		park := c.opts.ParkAfter > 0 && attempt >= c.opts.ParkAfter
		c.store.counters.handlerErrors.Add(1)
		c.store.happened(ctx, Happening{Category: CategorySubscriptions, Name: "consumer.failed", Consumer: c.key, Stream: e.StreamID, Position: e.Position, Err: herr})
		if c.opts.OnError != nil {
			c.opts.OnError(e, herr, attempt, park)
		}
		if park {
			p := ParkedEvent{Position: e.Position, EventID: e.ID, StreamID: e.StreamID, Error: herr.Error(), Attempts: attempt, ParkedAt: c.store.now()}
			if err := c.cp.Park(ctx, c.key, p); err != nil {
				return false, false, fmt.Errorf("consume %s: park: %w", c.key, err)
			}
			c.store.counters.parked.Add(1)
			c.store.happened(ctx, Happening{Category: CategorySubscriptions, Name: "consumer.parked", Consumer: c.key, Stream: e.StreamID, Position: e.Position, Err: herr})
			return false, true, nil
		}
		select {
		case <-time.After(backoff(c.opts.MinBackoff, c.opts.MaxBackoff, attempt)):
		case <-ctx.Done():
			return false, false, ctx.Err()
		}
	}
}

// call runs the handler once, turning a panic into an error.
func (c *consumer) call(ctx context.Context, e RecordedEvent) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrHandlerPanic, r)
		}
	}()
	if c.opts.TxHandler != nil {
		return c.store.inTx(ctx, func(ctx context.Context) error {
			return c.txcp.WithCheckpoint(ctx, c.key, e.Position, c.store.now(), func(ctx context.Context) error {
				return c.opts.TxHandler(ctx, e)
			})
		})
	}
	return c.opts.Handler(ctx, e)
}

// backoff is the wait after the given number of consecutive failures:
// first doubled each time, capped at limit, minus up to 25% jitter so
// that a fleet of devices, or of consumers, does not retry in step.
func backoff(first, limit time.Duration, failures int) time.Duration {
	d := first
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

func (c *consumer) maybeSave(ctx context.Context, byTime bool) error {
	if c.position <= c.saved {
		return nil
	}
	due := c.pending >= c.opts.CheckpointEvery ||
		(byTime && c.opts.CheckpointInterval > 0 && time.Since(c.savedTime) >= c.opts.CheckpointInterval)
	if !due {
		return nil
	}
	if err := c.cp.SaveCheckpoint(ctx, c.key, c.position, c.store.now()); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("consume %s: save checkpoint: %w", c.key, err)
	}
	c.saved, c.pending, c.savedTime = c.position, 0, time.Now()
	c.checkpointed(ctx, c.position)
	return nil
}

// checkpointed reports a saved checkpoint to the store's stats and hooks.
func (c *consumer) checkpointed(ctx context.Context, position int64) {
	c.store.counters.checkpoints.Add(1)
	c.store.running.saved()
	c.store.happened(ctx, Happening{Category: CategorySubscriptions, Name: "consumer.checkpoint", Consumer: c.key, Position: position})
}

// ResetConsumer moves the checkpoint of a consumer, and of every member of
// its groups, to just before position from, forward or back, and forgets
// its processed marks: rewinding to 0 rebuilds a projection from the start.
// Stop the consumer first: while it (or a member) runs, ResetConsumer
// fails with [ErrConsumerRunning], and it keeps the consumer from starting
// until it is done. The consumer picks the new position up when it next
// starts. A forwarder is reset by its checkpoint key, "outbox/" and its
// name.
func (s *Store) ResetConsumer(ctx context.Context, name string, from int64) error {
	cp, err := s.checkpointer()
	if err != nil {
		return err
	}
	if from < 0 {
		return fmt.Errorf("reset consumer: %w", invalidf("from %d", from))
	}
	all, err := cp.Checkpoints(ctx)
	if err != nil {
		return fmt.Errorf("reset consumer %s: %w", name, err)
	}
	keys := []string{name}
	for _, c := range all {
		if strings.HasPrefix(c.Key, name+"[") {
			keys = append(keys, c.Key)
		}
	}
	for _, k := range keys {
		if err := s.resetKey(ctx, cp, k, max(from-1, 0)); err != nil {
			return fmt.Errorf("reset consumer %s: %w", k, err)
		}
	}
	return nil
}

// resetKey resets one checkpoint under a claim of its own, so that it
// fails while the consumer runs, and the consumer cannot start meanwhile.
func (s *Store) resetKey(ctx context.Context, cp Backend, key string, position int64) error {
	owner, now := uuid.NewString(), s.now()
	if err := cp.Claim(ctx, key, owner, now, now.Add(DefaultLease)); err != nil {
		return err
	}
	// Should the release fail, the claim lapses on its own.
	defer cp.Release(context.WithoutCancel(ctx), key, owner)
	return cp.ResetCheckpoint(ctx, key, position, s.now())
}

// Consumers lists every consumer checkpoint (one per group member) with
// its lag behind the end of the log.
func (s *Store) Consumers(ctx context.Context) ([]ConsumerInfo, error) {
	cp, err := s.checkpointer()
	if err != nil {
		return nil, err
	}
	all, err := cp.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumers: %w", err)
	}
	last, err := s.lastPosition(ctx)
	if err != nil {
		return nil, fmt.Errorf("consumers: %w", err)
	}
	out := make([]ConsumerInfo, len(all))
	for i, c := range all {
		lag := max(last-c.Position, 0)
		out[i] = ConsumerInfo{Checkpoint: c, Lag: lag, CaughtUp: lag == 0 || s.running.caughtUp(c.Key)}
	}
	return out, nil
}

// Parked lists the events a consumer (or group member, by its
// [ConsumerKey]) parked, in position order.
func (s *Store) Parked(ctx context.Context, key string) ([]ParkedEvent, error) {
	cp, err := s.checkpointer()
	if err != nil {
		return nil, err
	}
	return cp.Parked(ctx, key)
}

// RetryParked asks the consumer (or group member, by its [ConsumerKey])
// to handle its parked event at position again: when the consumer next
// starts, before anything else, it hands the event to its handler with
// the usual retries; on success the event is no longer parked, and after
// ParkAfter more failures it is parked again. Like [Store.ResetConsumer],
// it fails with [ErrConsumerRunning] while the consumer runs (stop it
// first), and with [ErrNotParked] when no event is parked there.
func (s *Store) RetryParked(ctx context.Context, key string, position int64) error {
	return s.withParked(ctx, key, position, func(cp Backend, p ParkedEvent) error {
		p.Attempts = 0
		return cp.Park(ctx, key, p)
	})
}

// DropParked forgets the consumer's parked event at position: the
// consumer never handles it. It fails with [ErrConsumerRunning] while the
// consumer runs, and with [ErrNotParked] when no event is parked there.
func (s *Store) DropParked(ctx context.Context, key string, position int64) error {
	return s.withParked(ctx, key, position, func(cp Backend, p ParkedEvent) error {
		_, err := cp.Unpark(ctx, key, position)
		return err
	})
}

// withParked runs fn on the parked event of key at position, under a
// claim of key as [Store.ResetConsumer] does.
func (s *Store) withParked(ctx context.Context, key string, position int64, fn func(Backend, ParkedEvent) error) error {
	cp, err := s.checkpointer()
	if err != nil {
		return err
	}
	owner, now := uuid.NewString(), s.now()
	if err := cp.Claim(ctx, key, owner, now, now.Add(DefaultLease)); err != nil {
		return fmt.Errorf("parked %s: %w", key, err)
	}
	defer cp.Release(context.WithoutCancel(ctx), key, owner)
	parked, err := cp.Parked(ctx, key)
	if err != nil {
		return fmt.Errorf("parked %s: %w", key, err)
	}
	i := slices.IndexFunc(parked, func(p ParkedEvent) bool { return p.Position == position })
	if i < 0 {
		return fmt.Errorf("parked %s at %d: %w", key, position, ErrNotParked)
	}
	if err := fn(cp, parked[i]); err != nil {
		return fmt.Errorf("parked %s at %d: %w", key, position, err)
	}
	return nil
}

func (s *Store) checkpointer() (Backend, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	return s.backend, nil
}
