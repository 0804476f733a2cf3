package eventstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// FromNow is a [SubscribeOptions.From] that skips the events already stored:
// the subscription delivers only events committed after Subscribe returns.
const FromNow int64 = -1

// SubscribeOptions configure [Store.Subscribe]. The zero value subscribes
// to every event from the start of the log.
type SubscribeOptions struct {
	// From is the global position of the first event to deliver, inclusive:
	// 0 or 1 is the start of the log, a consumer resuming after position p
	// passes p+1, and [FromNow] skips what is already stored. A From past
	// the end of the log, up to math.MaxInt64, waits for that position.
	From int64
	// Filter selects the events to deliver; the zero Filter delivers all.
	Filter Filter
	// Buffer is the capacity of the Events channel: how far the
	// subscription may read ahead of its receiver. Default: 128; at most
	// [MaxBuffer].
	Buffer int
}

// Subscription delivers events of the global log on a channel: first the
// stored ones (catch-up), then each new one as it is committed (live),
// in position order, with no gap and no duplicate. Create it with
// [Store.Subscribe].
//
// A subscription never slows down writers. Live delivery is pushed from
// each commit: a backend that reports its commits ([CommitReporter], both
// bundled backends) hands their events to the subscriptions that are
// caught up, which put them on their channel without reading storage;
// any other commit (another process's, a [Store.Transact]'s) wakes the
// subscription, which then reads the new events from storage. A receiver
// that falls behind simply leaves the subscription reading from storage
// until it has caught up again, so its memory is bounded by Buffer, a page
// of reads and at most Buffer events handed to it and not yet taken. The
// Data and Metadata of a handed event may be shared with other
// subscriptions of the Store: treat them as read-only.
//
// A subscription is caught up, as KurrentDB's CaughtUp, once it has read
// the log to its end and put every matching event on the Events channel;
// it then stays caught up while its receiver keeps up, and falls behind
// (KurrentDB's FellBehind) when the receiver is a whole buffer behind, until
// it has caught up again. [Subscription.CaughtUp] tells which, and the
// hooks report each change as "subscription.caught_up" and
// "subscription.fell_behind".
type Subscription struct {
	events chan RecordedEvent
	wake   chan struct{} // capacity 1: a pending "there may be more"
	stop   chan struct{} // closed to stop the goroutine
	done   chan struct{} // closed when the goroutine has exited

	// Commits handed to the subscription and not yet taken, and whether
	// it must read storage: a commit was not handed (dropped, or one the
	// store was only told of).
	handMu   sync.Mutex
	handed   []Commit
	nHanded  int // events in handed
	mustRead bool

	// position is the last position the subscription has passed over:
	// every matching event up to it has been put on events. It moves only
	// past positions that storage showed committed or that a reported
	// commit covers.
	position atomic.Int64
	// progress, capacity 1, is a pending "position has moved", for the
	// consumer or forwarder that owns the subscription.
	progress chan struct{}

	stateMu  sync.Mutex
	caughtUp chan struct{} // closed while caught up; a new one when behind
	isCaught bool

	mu  sync.Mutex
	err error // why it ended; set before events is closed

	stopOnce      sync.Once
	closedByStore atomic.Bool

	owner string // the consumer key or forwarder name that runs it, or ""
}

// Events returns the channel of events. It is closed when the subscription
// ends: after Close, when its context is done, when the store is closed, or
// on a read error; [Subscription.Err] then says which.
func (sub *Subscription) Events() <-chan RecordedEvent { return sub.events }

// CaughtUp returns a channel that is closed when the subscription is
// caught up: it has read the log to its end, as storage last showed it, and
// put every matching event up to there on the Events channel (a receiver
// may still have up to a buffer of them to take). While the subscription
// is catching up, or has fallen behind, the channel is open, and closed
// when it catches up; after it falls behind again, CaughtUp returns a new,
// open channel. So <-sub.CaughtUp() waits for the subscription to be
// caught up, and a receiver that selects on it calls it anew each time.
// The channel of a subscription that has ended may stay open.
func (sub *Subscription) CaughtUp() <-chan struct{} {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	return sub.caughtUp
}

// Position returns the last position of the global log the subscription
// has passed over: every matching event at or below it has been put on
// the Events channel. For a filtered subscription it moves past the
// positions of events that do not match, though only past positions that
// storage showed committed. A receiver that has taken from the channel
// every event that was in it when Position returned has seen every
// matching event up to that position.
func (sub *Subscription) Position() int64 { return sub.position.Load() }

// setCaughtUp records whether the subscription is caught up, and reports
// whether that changed.
func (sub *Subscription) setCaughtUp(caught bool) bool {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	if sub.isCaught == caught {
		return false
	}
	sub.isCaught = caught
	if caught {
		close(sub.caughtUp)
	} else {
		sub.caughtUp = make(chan struct{})
	}
	return true
}

func (sub *Subscription) isCaughtUp() bool {
	sub.stateMu.Lock()
	defer sub.stateMu.Unlock()
	return sub.isCaught
}

// Err returns why the subscription ended: nil while it runs and after
// [Subscription.Close], the context's error when its context ended,
// [ErrClosed] when the store was closed, or the error that stopped it.
func (sub *Subscription) Err() error {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.err
}

func (sub *Subscription) setErr(err error) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.err = err
}

// Close ends the subscription and returns once its goroutine has exited
// and the Events channel is closed. Events not yet received are dropped.
// Close is safe to call more than once and from any goroutine.
func (sub *Subscription) Close() error {
	sub.stopOnce.Do(func() { close(sub.stop) })
	<-sub.done
	return nil
}

// Subscribe starts a subscription to the events that match opts.Filter,
// from opts.From on. Events that [Store.Prune] removes before the
// subscription reads them are not delivered: it goes on from the next event
// that exists, and when the prune ran through this Store, the hooks say so
// with "subscription.events_pruned". It catches up from storage and then delivers new
// events as they are committed, on the channel of [Subscription.Events].
// The subscription runs until Close is called, ctx is done, or the store
// is closed.
//
// When another process writes to the same store (the SQLite backend), its
// events are delivered too, after the short delay of the backend's change
// watcher (see [ChangeWatcher]).
//
// A malformed filter, a From below [FromNow] or a Buffer below 0 or above
// [MaxBuffer] is [ErrInvalidArgument].
func (s *Store) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	return s.subscribe(ctx, opts, "")
}

// subscribe is Subscribe for owner, the consumer or forwarder that runs the
// subscription ("" for none), which its happenings name.
func (s *Store) subscribe(ctx context.Context, opts SubscribeOptions, owner string) (*Subscription, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	filter, err := opts.Filter.withMatcher()
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	opts.Filter = filter
	if opts.From < FromNow {
		return nil, fmt.Errorf("subscribe: %w", invalidf("from %d", opts.From))
	}
	if opts.Buffer < 0 || opts.Buffer > MaxBuffer {
		return nil, fmt.Errorf("subscribe: %w", invalidf("buffer %d: must be from 0 to %d", opts.Buffer, MaxBuffer))
	}
	if opts.Buffer == 0 {
		opts.Buffer = 128
	}
	cursor := max(opts.From-1, 0) // the last position passed over
	if opts.From == FromNow {
		last, err := s.lastPosition(ctx)
		if err != nil {
			return nil, fmt.Errorf("subscribe: %w", err)
		}
		cursor = last
	}
	sub := &Subscription{
		events:   make(chan RecordedEvent, opts.Buffer),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		progress: make(chan struct{}, 1),
		caughtUp: make(chan struct{}),
		owner:    owner,
	}
	sub.position.Store(cursor)
	if err := s.hub.add(s, sub); err != nil {
		return nil, err
	}
	s.counters.subscribed.Add(1)
	s.counters.subscriptions.Add(1)
	s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.created", Position: cursor})
	go s.run(ctx, sub, cursor, opts.Filter)
	return sub, nil
}

// lastPosition returns the position of the last event in the log, 0 when
// it is empty.
func (s *Store) lastPosition(ctx context.Context) (int64, error) {
	for e, err := range s.backend.ReadAll(ctx, ReadOptions{Backward: true, Limit: 1}, Filter{}) {
		return e.Position, err
	}
	return 0, nil
}

// run is the subscription's goroutine: read from storage past cursor, send,
// then wait for a wake-up, until stopped. A wake-up that brings only
// commits the subscription can take whole, it takes without a read.
func (s *Store) run(ctx context.Context, sub *Subscription, cursor int64, filter Filter) {
	defer func() {
		s.hub.remove(sub, s)
		s.counters.subscriptions.Add(-1)
		s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.closed", Position: cursor, Err: sub.Err()})
		close(sub.events)
		close(sub.done)
	}()
	for {
		// The cursor moves only past positions that storage showed
		// committed (or, below, that a commit handed over covers), never
		// past one it was told of: a wake-up is only a hint, and a position a rolled-back transaction had taken is given
		// to a later append. A filtered read skips the events that do not
		// match, so it first reads the last position of the whole log:
		// events become visible in position order, so the read that follows
		// sees every event up to that one, and has passed over them all,
		// matching or not, once it has run to the end.
		var head int64
		var err error
		if !filter.IsZero() {
			if head, err = s.lastPosition(ctx); err != nil {
				err = readErr(ctx, err)
			}
		}
		if err == nil {
			cursor, err = s.catchUp(ctx, sub, cursor, filter)
		}
		if err == nil && head > cursor {
			s.reportPruned(ctx, sub, filter, cursor+1, head)
		}
		if err == errStopped {
			sub.setErr(sub.stopReason())
			return
		}
		if err != nil {
			sub.setErr(err)
			return
		}
		cursor = max(cursor, head)
		// Position first: whoever sees the subscription caught up, or
		// is told of progress, reads a position that covers it.
		sub.position.Store(cursor)
		select {
		case sub.progress <- struct{}{}:
		default: // already pending
		}
		if sub.setCaughtUp(true) {
			s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.caught_up", Position: cursor})
		}
	wait:
		select {
		case <-sub.wake:
		case <-ctx.Done():
			sub.setErr(ctx.Err())
			return
		case <-sub.stop:
			sub.setErr(sub.stopReason())
			return
		}
		commits, read := sub.takeHanded()
		for _, c := range commits {
			if read {
				break // the read covers them
			}
			cursor, read = sub.take(cursor, c, filter)
		}
		if read {
			continue
		}
		sub.position.Store(cursor)
		select {
		case sub.progress <- struct{}{}:
		default:
		}
		goto wait
	}
}

// take puts on the events channel the events of a reported commit past
// cursor that match filter, without blocking, and returns the new cursor.
// It reports true when storage must be read instead: the commit leaves a
// gap after cursor (a commit the subscription was not handed), or the
// receiver is a whole buffer behind.
func (sub *Subscription) take(cursor int64, c Commit, filter Filter) (int64, bool) {
	first, last := c.Events[0].Position, c.Events[len(c.Events)-1].Position
	switch {
	case cursor >= last:
		return cursor, false // passed over already, by a read
	case cursor < first-1:
		return cursor, true // events between cursor and the commit are unknown here
	}
	// Every event between first-1 and last is in c (see Commit).
	for _, e := range c.Events {
		if e.Position <= cursor {
			continue
		}
		if filter.IsZero() || filter.checked.matches(e) {
			select {
			case sub.events <- e:
			default:
				return cursor, true // the receiver is behind: read, and wait there
			}
		}
		cursor = e.Position
	}
	return cursor, false
}

// hand gives c to the subscription, or, when it already holds as many
// events as its buffer, marks that it must read storage. It never blocks.
func (sub *Subscription) hand(c Commit) {
	sub.handMu.Lock()
	if sub.mustRead || sub.nHanded+len(c.Events) > cap(sub.events) {
		sub.mustRead = true
		sub.handed, sub.nHanded = nil, 0
	} else {
		sub.handed = append(sub.handed, c)
		sub.nHanded += len(c.Events)
	}
	sub.handMu.Unlock()
	sub.signal()
}

// stale marks that storage may hold events the subscription was not
// handed, and wakes it.
func (sub *Subscription) stale() {
	sub.handMu.Lock()
	sub.mustRead = true
	sub.handed, sub.nHanded = nil, 0
	sub.handMu.Unlock()
	sub.signal()
}

func (sub *Subscription) signal() {
	select {
	case sub.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// takeHanded returns the commits handed since the last call, and whether
// storage must be read.
func (sub *Subscription) takeHanded() ([]Commit, bool) {
	sub.handMu.Lock()
	defer sub.handMu.Unlock()
	commits, read := sub.handed, sub.mustRead
	sub.handed, sub.nHanded, sub.mustRead = nil, 0, false
	return commits, read
}

// catchUp sends the matching events after cursor that storage holds now,
// and returns the new cursor.
func (s *Store) catchUp(ctx context.Context, sub *Subscription, cursor int64, filter Filter) (int64, error) {
	lagging := false
	for e, err := range s.backend.ReadAll(ctx, ReadOptions{From: cursor + 1}, filter) {
		if err != nil {
			return cursor, readErr(ctx, err)
		}
		if e.Position > cursor+1 {
			s.reportPruned(ctx, sub, filter, cursor+1, e.Position-1)
		}
		select {
		case sub.events <- e:
			cursor, lagging = e.Position, false
			continue
		default:
		}
		// The receiver is a whole buffer behind: say so once, then wait.
		if !lagging {
			lagging = true
			s.counters.lagging.Add(1)
			s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.lagging", Position: e.Position})
			if sub.setCaughtUp(false) {
				s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.fell_behind", Position: e.Position})
			}
		}
		select {
		case sub.events <- e:
			cursor = e.Position
		case <-ctx.Done():
			return cursor, ctx.Err()
		case <-sub.stop:
			return cursor, errStopped
		}
	}
	return cursor, nil
}

// readErr is the Err of a subscription whose read failed: ctx's error
// when it ended, which interrupts reads.
func readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("subscription: %w", err)
}

// stopReason is the Err of a stopped subscription: nil after its own
// Close, ErrClosed when the store closed it.
func (sub *Subscription) stopReason() error {
	if sub.closedByStore.Load() {
		return ErrClosed
	}
	return nil
}

// hub connects commits to subscriptions.
type hub struct {
	// head is the highest position an Append through this Store has
	// committed.
	head atomic.Int64

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	// The change watcher runs while subs is not empty.
	stopWatch func()
	watchDone chan struct{}
}

// notify records a commit up to position and wakes every subscription to
// read storage. It never blocks.
func (h *hub) notify(position int64) {
	h.advance(position)
	h.wakeAll()
}

// advance records a commit up to position.
func (h *hub) advance(position int64) {
	for {
		old := h.head.Load()
		if position <= old || h.head.CompareAndSwap(old, position) {
			break
		}
	}
}

func (h *hub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		sub.stale()
	}
}

// deliver hands a commit the backend reported to every subscription. It
// never blocks.
func (h *hub) deliver(c Commit) {
	if len(c.Events) == 0 {
		h.wakeAll()
		return
	}
	h.advance(c.Events[len(c.Events)-1].Position)
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		sub.hand(c)
	}
}

func (h *hub) add(s *Store, sub *Subscription) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	if h.subs == nil {
		h.subs = make(map[*Subscription]struct{})
	}
	h.subs[sub] = struct{}{}
	if r := s.caps.commits; r != nil && len(h.subs) == 1 {
		// From now on; a commit before this, sub's first read sees.
		r.ReportCommits(h.deliver)
	}
	if w := s.caps.watcher; w != nil && h.stopWatch == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		h.stopWatch, h.watchDone = cancel, done
		go func() {
			defer close(done)
			_ = w.WatchChanges(ctx, h.wakeAll)
		}()
	}
	return nil
}

// remove forgets sub, and stops the change watcher with the last
// subscription, waiting for it to exit.
func (h *hub) remove(sub *Subscription, s *Store) {
	h.mu.Lock()
	delete(h.subs, sub)
	if r := s.caps.commits; r != nil && len(h.subs) == 0 {
		r.ReportCommits(nil)
	}
	var stop func()
	var done chan struct{}
	if len(h.subs) == 0 && h.stopWatch != nil {
		stop, done = h.stopWatch, h.watchDone
		h.stopWatch, h.watchDone = nil, nil
	}
	h.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// close ends every subscription with ErrClosed and waits for them.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	subs := make([]*Subscription, 0, len(h.subs))
	for sub := range h.subs {
		subs = append(subs, sub)
	}
	h.mu.Unlock()
	for _, sub := range subs {
		sub.closedByStore.Store(true)
		sub.Close()
	}
}
