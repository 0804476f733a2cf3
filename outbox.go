package eventstore

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Sink is where a [Forwarder] ships events: a broker such as NATS
// JetStream (package jetstream), an HTTP endpoint (package httpsink), or
// anything else.
//
// Event IDs are idempotency keys: after a failure or a restart the
// forwarder sends again what was not confirmed, so a sink should drop an
// event whose ID it has seen (JetStream does, by Nats-Msg-Id).
type Sink interface {
	// Send delivers a batch of events, in position order. It returns how
	// many events from the start of the batch the sink has durably
	// accepted: all of them with a nil error; with an error, those before
	// the failure, which the forwarder will not send again.
	Send(ctx context.Context, events []RecordedEvent) (accepted int, err error)
}

// ForwarderOptions configure a [Forwarder]. Name and Sink are required.
type ForwarderOptions struct {
	// Name identifies the forwarder's checkpoint, stored like a consumer's
	// under the key "outbox/" + Name: consumer names may not begin with
	// "outbox/", so a consumer never shares a forwarder's checkpoint, and a
	// consumer and a forwarder may have the same name.
	Name string
	// Sink receives the events.
	Sink Sink
	// Filter selects the events to ship. Default: all.
	Filter Filter
	// BatchSize is the most events per Send. Default: 100; at most
	// [MaxBatchSize].
	BatchSize int
	// MinBackoff is the first wait after a failed Send. Default: 100ms; at
	// most 24h.
	MinBackoff time.Duration
	// MaxBackoff caps the wait, which doubles after each consecutive
	// failure, with jitter. Default: 30s; at most 24h.
	MaxBackoff time.Duration
	// From is where a forwarder without a checkpoint starts, as in
	// [SubscribeOptions.From]. Default: the start of the log.
	From int64
	// Lease is how long the claim of a running forwarder outlives its last
	// renewal, as [ConsumerOptions.Lease]: a second Run of the same name
	// fails with [ErrConsumerRunning] until the first stops, or its process
	// dies and the claim lapses. Default: [DefaultLease]. At most
	// [MaxLease].
	Lease time.Duration
}

// ForwarderStatus is a forwarder's state, from [Forwarder.Status].
type ForwarderStatus struct {
	// Position is the checkpoint: the last position the sink confirmed,
	// or past it the last position the forwarder passed over with nothing
	// to send (events its filter skips).
	Position int64
	// Pending is how many positions of the global log lie after Position,
	// counting the appends made through this Store; they may not all match
	// the forwarder's filter. It reaches 0 once nothing is left to send.
	Pending int64
	// OldestPending is when the oldest event waiting to be sent was
	// recorded; zero when nothing waits.
	OldestPending time.Time
	// LastSent is when the sink last confirmed a batch.
	LastSent time.Time
	// Sent counts the events the sink has confirmed since Run started.
	Sent uint64
	// ConsecutiveFailures counts failed Sends since the last success.
	ConsecutiveFailures int
	// LastError is the last Send (or checkpoint) error; nil after a success.
	LastError error
}

// Lag is how long the oldest waiting event has waited, at now.
func (s ForwarderStatus) Lag(now time.Time) time.Duration {
	if s.OldestPending.IsZero() {
		return 0
	}
	return now.Sub(s.OldestPending)
}

// Forwarder ships committed events to a [Sink] in position order, in
// batches, and moves a durable checkpoint only after the sink confirms:
// the outbox pattern. Writers never wait for the network; while the sink
// is down the forwarder backs off and retries, and after a restart it
// resumes from its checkpoint, so every event arrives, in order, at least
// once (exactly once at a sink that deduplicates by event ID).
//
// Create it with [Store.NewForwarder] and run it with [Forwarder.Run].
type Forwarder struct {
	store *Store
	cp    Backend
	opts  ForwarderOptions
	key   string

	mu     sync.Mutex
	status ForwarderStatus
}

// NewForwarder checks opts and returns a forwarder; Run starts it.
func (s *Store) NewForwarder(opts ForwarderOptions) (*Forwarder, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := validateName("forwarder name", opts.Name, MaxStreamIDLen); err != nil {
		return nil, fmt.Errorf("forwarder: %w", err)
	}
	if opts.Sink == nil {
		return nil, fmt.Errorf("forwarder %s: %w", opts.Name, invalidf("no sink"))
	}
	filter, err := opts.Filter.withMatcher()
	if err != nil {
		return nil, fmt.Errorf("forwarder %s: %w", opts.Name, err)
	}
	opts.Filter = filter
	if opts.BatchSize < 0 || opts.MinBackoff < 0 || opts.MaxBackoff < 0 || opts.From < FromNow || opts.Lease < 0 {
		return nil, fmt.Errorf("forwarder %s: %w", opts.Name, invalidf("negative option"))
	}
	if err := firstError(
		atMost("batch size", opts.BatchSize, MaxBatchSize),
		atMost("min backoff", opts.MinBackoff, maxWait),
		atMost("max backoff", opts.MaxBackoff, maxWait),
		atMost("lease", opts.Lease, MaxLease),
	); err != nil {
		return nil, fmt.Errorf("forwarder %s: %w", opts.Name, err)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = 100
	}
	if opts.Lease == 0 {
		opts.Lease = DefaultLease
	}
	backoffDefaults(&opts.MinBackoff, &opts.MaxBackoff)
	return &Forwarder{store: s, cp: s.backend, opts: opts, key: forwarderPrefix + opts.Name}, nil
}

// Status returns the forwarder's current state. Safe to call at any time,
// from any goroutine. While the forwarder saves its checkpoint, Status
// waits for the save, so that it is never behind a checkpoint that
// [Store.WaitFor] has seen.
func (f *Forwarder) Status() ForwarderStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Pending = max(0, f.store.hub.head.Load()-st.Position)
	return st
}

func (f *Forwarder) update(fn func(s *ForwarderStatus)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.status)
}

// Run forwards events until ctx ends, then returns ctx's error, or
// earlier with the error that stopped it (a closed store, a storage
// failure). Sink errors do not stop it: it retries. When ctx ends during a
// Send, the events the sink confirmed are checkpointed and the rest are
// sent again by the next Run.
//
// Only one Run of a forwarder name goes on at a time, in this process or
// in any other on the same store: while one runs, another fails at once
// with [ErrConsumerRunning] (claims work as for [Store.Consume]; see
// [ForwarderOptions.Lease]).
func (f *Forwarder) Run(ctx context.Context) error {
	if err := f.store.checkOpen(); err != nil {
		return err
	}
	cctx, release, err := f.store.claim(ctx, f.cp, f.key, f.opts.Lease)
	if err != nil {
		return fmt.Errorf("forwarder %s: %w", f.opts.Name, err)
	}
	defer release()
	err = f.run(cctx)
	if ctx.Err() == nil && cctx.Err() != nil { // the claim was lost
		return fmt.Errorf("forwarder %s: %w", f.opts.Name, context.Cause(cctx))
	}
	return err
}

func (f *Forwarder) run(ctx context.Context) error {
	pos, ok, err := f.cp.LoadCheckpoint(ctx, f.key)
	if err != nil {
		return fmt.Errorf("forwarder %s: %w", f.opts.Name, err)
	}
	from := pos + 1
	if !ok {
		from = f.opts.From
	}
	sub, err := f.store.subscribe(ctx, SubscribeOptions{From: from, Filter: f.opts.Filter, Buffer: 2 * f.opts.BatchSize}, f.key)
	if err != nil {
		return fmt.Errorf("forwarder %s: %w", f.opts.Name, err)
	}
	defer sub.Close()
	f.update(func(s *ForwarderStatus) { s.Position, s.Sent = pos, 0 })

	batch := make([]RecordedEvent, 0, f.opts.BatchSize)
	for {
		// Wait for one event, then take what else is ready, up to a batch.
		select {
		case e, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); err != nil {
					return fmt.Errorf("forwarder %s: %w", f.opts.Name, err)
				}
				return ctx.Err()
			}
			batch = append(batch[:0], e)
		case <-sub.progress:
			if err := f.advance(ctx, sub); err != nil {
				return err
			}
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
	fill:
		for len(batch) < f.opts.BatchSize {
			select {
			case e, ok := <-sub.Events():
				if !ok {
					break fill
				}
				batch = append(batch, e)
			default:
				break fill
			}
		}
		f.update(func(s *ForwarderStatus) { s.OldestPending = batch[0].RecordedAt })
		if err := f.send(ctx, batch); err != nil {
			return err
		}
		// A progress signal taken while events were still on the channel
		// found them unsent and did nothing; with the channel empty now,
		// the skipped events after the batch can be passed.
		if err := f.advance(ctx, sub); err != nil {
			return err
		}
	}
}

// advance moves the checkpoint past what the subscription has passed
// over without an event to send (the events the filter skips), once every
// event it put on its channel has been sent: so Pending reaches 0.
func (f *Forwarder) advance(ctx context.Context, sub *Subscription) error {
	scanned := sub.Position() // before the channel is checked, as consumers do
	if len(sub.events) > 0 {
		return nil
	}
	f.mu.Lock()
	if scanned <= f.status.Position {
		f.mu.Unlock()
		return nil
	}
	err := f.saveLocked(ctx, scanned, func(s *ForwarderStatus) { s.Position = max(s.Position, scanned) })
	f.mu.Unlock()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("forwarder %s: save checkpoint: %w", f.opts.Name, err)
	}
	f.store.counters.checkpoints.Add(1)
	f.store.running.saved()
	return nil
}

// saveLocked saves the checkpoint at position and, once saved, applies
// the status change that goes with it; f.mu is held throughout. Status
// takes f.mu too, so it never reads a status behind a checkpoint that is
// already in storage, where a WaitFor (which reads storage) may have seen
// it: it waits for the save in progress instead.
func (f *Forwarder) saveLocked(ctx context.Context, position int64, change func(s *ForwarderStatus)) error {
	if err := f.cp.SaveCheckpoint(ctx, f.key, position, f.store.now()); err != nil {
		return err
	}
	change(&f.status)
	return nil
}

// send delivers batch, retrying with backoff until the sink has accepted
// all of it, checkpointing each accepted prefix.
func (f *Forwarder) send(ctx context.Context, batch []RecordedEvent) error {
	for failures := 0; len(batch) > 0; {
		t0 := time.Now()
		n, err := f.opts.Sink.Send(ctx, batch)
		took := time.Since(t0)
		n = min(max(n, 0), len(batch))
		if err == nil {
			n = len(batch)
		}
		if n > 0 {
			last := batch[n-1].Position
			// Saved even if ctx has just ended: the sink has these.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			f.mu.Lock()
			serr := f.saveLocked(sctx, last, func(s *ForwarderStatus) {
				s.Position, s.LastSent, s.Sent = last, time.Now(), s.Sent+uint64(n)
				s.OldestPending = time.Time{}
				if len(batch) > n {
					s.OldestPending = batch[n].RecordedAt
				}
			})
			f.mu.Unlock()
			cancel()
			if serr != nil {
				return fmt.Errorf("forwarder %s: save checkpoint: %w", f.opts.Name, serr)
			}
			batch = batch[n:]
			f.store.counters.outboxSent.Add(uint64(n))
			f.store.counters.checkpoints.Add(1)
			f.store.happened(ctx, Happening{Category: CategoryOutbox, Name: "outbox.sent", Consumer: f.key, Position: last, Events: n, Duration: took})
			f.store.running.saved()
		}
		if err == nil {
			f.update(func(s *ForwarderStatus) { s.ConsecutiveFailures, s.LastError = 0, nil })
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failures++
		f.store.counters.outboxFailures.Add(1)
		f.store.happened(ctx, Happening{Category: CategoryOutbox, Name: "outbox.failed", Consumer: f.key, Events: len(batch), Duration: took, Err: err})
		f.update(func(s *ForwarderStatus) { s.ConsecutiveFailures, s.LastError = failures, err })
		select {
		case <-time.After(backoff(f.opts.MinBackoff, f.opts.MaxBackoff, failures)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
