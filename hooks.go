package eventstore

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// Hook categories, as ex-esdb groups its lifecycle broadcasts.
const (
	CategorySystem        = "system"        // the store opened or closed
	CategoryPersistence   = "persistence"   // appends, reads, deletes, snapshots
	CategorySubscriptions = "subscriptions" // subscriptions and consumers
	CategoryOutbox        = "outbox"        // forwarders and their sinks
	CategoryStorage       = "storage"       // the backend's room for events
)

// Op is an operation a [Hooks.Start] observes.
type Op struct {
	Category string // CategoryPersistence
	// Name is "append", "read_stream", "read_all", "delete_stream",
	// "purge_stream", "save_snapshot", "prune" (Outcome.Events: the
	// events removed) or "reclaim_space".
	Name   string
	Stream string // the stream, when the operation has one
}

// Outcome is how an [Op] ended.
type Outcome struct {
	Duration time.Duration
	Events   int   // events appended or read
	Position int64 // the last position appended or read; 0 when none
	Err      error
}

// Happening is something that happened rather than an operation, for
// [Hooks.Event]: the store opened or closed; a subscription created,
// closed, or lagging behind; a consumer's checkpoint saved, its handler
// failing, an event parked; a snapshot saved; an outbox batch sent or
// failed.
type Happening struct {
	Category string
	// Name is one of "store.opened", "store.closed",
	// "subscription.created", "subscription.closed",
	// "subscription.lagging", "subscription.caught_up",
	// "subscription.fell_behind" (see [Subscription.CaughtUp]),
	// "consumer.caught_up", "consumer.fell_behind" (see
	// [ConsumerInfo.CaughtUp]), "consumer.checkpoint", "consumer.failed",
	// "consumer.parked", "snapshot.saved", "outbox.sent", "outbox.failed",
	// "snapshot.ignored" (a [Repository] replayed instead, see
	// [RepositoryOptions.SnapshotVersion]), "prune.done" (Events removed,
	// Duration), "prune.failed", "prune.kept_back" (Events: expired events
	// kept because [PruneOptions.After] had not passed them),
	// "subscription.events_pruned" (a subscription, or the consumer or
	// forwarder named by Consumer, went on past a range of positions, From
	// to Position, in which a [Store.Prune] of this Store removed events
	// of streams its filter selects before it read them), "storage.low"
	// (the storage in use crossed the warning threshold of the budget),
	// "storage.full" (a write failed with [ErrStorageFull], which is
	// Err), "storage.ok" (back under the threshold after one of those).
	Name     string
	Stream   string // the stream, when there is one
	Consumer string // the consumer key or forwarder name, when there is one
	Position int64
	// From is where the range of positions ending at Position begins, for
	// "subscription.events_pruned"; 0 otherwise.
	From     int64
	Events   int
	Duration time.Duration
	Err      error
	// Bytes and Limit, for the storage happenings: the bytes the store
	// uses, and its budget (0 without one).
	Bytes, Limit int64
}

// Hooks observe a [Store]: set them in [Options.Hooks]. Both are optional
// and called synchronously, so they must be quick and must not call back
// into the store. [LogHooks] logs with log/slog; the module
// github.com/edge-es/eventstore/otelhooks adapts them to OpenTelemetry.
type Hooks struct {
	// Start is called as an operation begins. The function it returns, if
	// not nil, is called when the operation ends (for a read: when the
	// loop over its sequence ends).
	Start func(ctx context.Context, op Op) (end func(Outcome))
	// Event is called when something happens.
	Event func(ctx context.Context, h Happening)
}

// Stats are a store's counters since [New], from [Store.Stats].
type Stats struct {
	Appends        uint64 // successful appends
	EventsAppended uint64
	AppendErrors   uint64 // failed appends, conflicts included
	Conflicts      uint64 // appends refused by their expected version
	Reads          uint64 // ReadStream and ReadAll sequences ranged
	EventsRead     uint64
	Subscriptions  int64  // subscriptions running now
	Subscribed     uint64 // subscriptions ever created
	Lagging        uint64 // times a subscriber fell behind its buffer
	Checkpoints    uint64 // consumer and forwarder checkpoints saved
	HandlerErrors  uint64 // failed consumer handler attempts
	Parked         uint64 // events parked by consumers
	SnapshotsSaved uint64
	OutboxSent     uint64 // events sinks confirmed
	OutboxFailures uint64 // failed Sends
	Prunes         uint64 // prunes that ran to the end
	PruneFailures  uint64 // prunes that failed
	EventsPruned   uint64 // events removed by prunes
	// KeptBack is how many expired events the last prune that ran to the
	// end kept because [PruneOptions.After] had not passed them.
	KeptBack int64
}

// counters is the live form of Stats.
type counters struct {
	appends, eventsAppended, appendErrors, conflicts, reads, eventsRead atomic.Uint64
	subscriptions                                                       atomic.Int64
	subscribed, lagging, checkpoints, handlerErrors, parked             atomic.Uint64
	snapshotsSaved, outboxSent, outboxFailures                          atomic.Uint64
	prunes, pruneFailures, eventsPruned                                 atomic.Uint64
	keptBack                                                            atomic.Int64
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	c := &s.counters
	return Stats{
		Appends: c.appends.Load(), EventsAppended: c.eventsAppended.Load(), AppendErrors: c.appendErrors.Load(),
		Conflicts: c.conflicts.Load(), Reads: c.reads.Load(), EventsRead: c.eventsRead.Load(),
		Subscriptions: c.subscriptions.Load(), Subscribed: c.subscribed.Load(), Lagging: c.lagging.Load(),
		Checkpoints: c.checkpoints.Load(), HandlerErrors: c.handlerErrors.Load(), Parked: c.parked.Load(),
		SnapshotsSaved: c.snapshotsSaved.Load(), OutboxSent: c.outboxSent.Load(), OutboxFailures: c.outboxFailures.Load(),
		Prunes: c.prunes.Load(), PruneFailures: c.pruneFailures.Load(), EventsPruned: c.eventsPruned.Load(), KeptBack: c.keptBack.Load(),
	}
}

// begin starts observing an operation; the returned function ends it. It
// costs nothing beyond a nil check without a Start hook.
func (s *Store) begin(ctx context.Context, name, stream string) func(Outcome) {
	start := s.opts.Hooks.Start
	if start == nil {
		return func(Outcome) {}
	}
	end := start(ctx, Op{Category: CategoryPersistence, Name: name, Stream: stream})
	if end == nil {
		return func(Outcome) {}
	}
	t0 := time.Now()
	return func(o Outcome) {
		o.Duration = time.Since(t0)
		end(o)
	}
}

// happened reports a happening to the Event hook.
func (s *Store) happened(ctx context.Context, h Happening) {
	if s.opts.Hooks.Event != nil {
		s.opts.Hooks.Event(ctx, h)
	}
}

// LogHooks returns hooks that log to logger: operations at Debug level
// (Warn when they fail), happenings at Info (Warn for failures). A
// read_stream that ends in [ErrStreamNotFound] is logged at Debug, with its
// error, like a success: the stream not existing is an answer (every new
// aggregate's first load gets it), not a failure. A delete or purge of a
// stream that does not exist is still a Warn: the caller asked for
// something that could not be done.
func LogHooks(logger *slog.Logger) Hooks {
	return Hooks{
		Start: func(ctx context.Context, op Op) func(Outcome) {
			return func(o Outcome) {
				level := slog.LevelDebug
				if failed(op, o.Err) {
					level = slog.LevelWarn
				}
				if !logger.Enabled(ctx, level) {
					return
				}
				attrs := []slog.Attr{slog.String("op", op.Name), slog.Duration("duration", o.Duration), slog.Int("events", o.Events)}
				if op.Stream != "" {
					attrs = append(attrs, slog.String("stream", op.Stream))
				}
				if o.Position > 0 {
					attrs = append(attrs, slog.Int64("position", o.Position))
				}
				if o.Err != nil {
					attrs = append(attrs, slog.Any("error", o.Err))
				}
				logger.LogAttrs(ctx, level, "eventstore: "+op.Name, attrs...)
			}
		},
		Event: func(ctx context.Context, h Happening) {
			level := slog.LevelInfo
			if h.Err != nil || h.Name == "storage.low" {
				level = slog.LevelWarn
			}
			if !logger.Enabled(ctx, level) {
				return
			}
			attrs := []slog.Attr{slog.String("category", h.Category)}
			if h.Stream != "" {
				attrs = append(attrs, slog.String("stream", h.Stream))
			}
			if h.Consumer != "" {
				attrs = append(attrs, slog.String("consumer", h.Consumer))
			}
			if h.From > 0 {
				attrs = append(attrs, slog.Int64("from", h.From))
			}
			if h.Position > 0 {
				attrs = append(attrs, slog.Int64("position", h.Position))
			}
			if h.Events > 0 {
				attrs = append(attrs, slog.Int("events", h.Events))
			}
			if h.Duration > 0 {
				attrs = append(attrs, slog.Duration("duration", h.Duration))
			}
			if h.Bytes > 0 {
				attrs = append(attrs, slog.Int64("bytes", h.Bytes))
			}
			if h.Limit > 0 {
				attrs = append(attrs, slog.Int64("limit", h.Limit))
			}
			if h.Err != nil {
				attrs = append(attrs, slog.Any("error", h.Err))
			}
			logger.LogAttrs(ctx, level, "eventstore: "+h.Name, attrs...)
		},
	}
}

// failed reports whether an operation's error is a failure, rather than
// the answer that the stream read does not exist.
func failed(op Op, err error) bool {
	return err != nil && !(op.Name == "read_stream" && errors.Is(err, ErrStreamNotFound))
}
