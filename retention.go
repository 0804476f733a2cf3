package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Retention is how long a stream keeps its events, with the semantics of
// KurrentDB's $maxAge, $maxCount and $tb stream metadata. Each non-zero
// field expires events on its own, and an event expires when any of them
// says so. The zero Retention keeps everything; negative values are
// [ErrInvalidArgument].
//
// Expiry truncates the front of a stream: its first retained version is
// the lowest version that is at least TruncateBefore, among the MaxCount
// newest, and recorded (by [Options.Clock]) no longer than MaxAge ago;
// every version from there on is retained, so a stream never reads with a
// hole, even if the clock once went back.
//
// As in KurrentDB, expired events disappear from [Store.ReadStream] at
// once, while [Store.StreamVersion] and later Appends carry on from the
// stream's real last version; [Store.ReadAll], subscriptions and consumers
// keep seeing them in the global log until [Store.Prune] removes them.
type Retention struct {
	// MaxAge expires the events recorded longer ago than this.
	MaxAge time.Duration
	// MaxCount keeps only the newest MaxCount events of the stream.
	MaxCount int64
	// TruncateBefore expires the versions below this one.
	TruncateBefore int64
}

// IsZero reports whether r keeps everything.
func (r Retention) IsZero() bool { return r == Retention{} }

func (r Retention) validate() error {
	if r.MaxAge < 0 || r.MaxCount < 0 || r.TruncateBefore < 0 {
		return invalidf("retention %+v: values must be >= 0", r)
	}
	return nil
}

// RetentionPolicy is a stored [Retention]: a stream's own, or a
// category's. Exactly one of Stream and Category is set.
type RetentionPolicy struct {
	Stream    string // the stream the policy is set on, or ""
	Category  string // the category the policy is set on, or ""
	Retention Retention
}

// SetRetention stores a stream's own retention policy, replacing the one
// it had; it takes effect for reads at once. A stream's own policy
// overrides its category's as a whole (the fields are not merged); the zero
// Retention removes the stream's own policy, so that its category's
// applies again. The stream need not exist yet. An invalid stream ID or a
// negative value is [ErrInvalidArgument], and nothing is stored.
func (s *Store) SetRetention(ctx context.Context, stream string, r Retention) error {
	if err := ValidateStreamID(stream); err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	return s.setRetention(ctx, RetentionPolicy{Stream: stream, Retention: r})
}

// SetCategoryRetention stores the retention policy of every stream of a
// category (see [Category]) that has no policy of its own, replacing the
// one the category had; the zero Retention removes it. A category is
// validated like a stream ID, and may not contain '-'; a bad one, or a
// negative value, is [ErrInvalidArgument], and nothing is stored.
func (s *Store) SetCategoryRetention(ctx context.Context, category string, r Retention) error {
	if err := validateCategory(category); err != nil {
		return fmt.Errorf("set category retention: %w", err)
	}
	return s.setRetention(ctx, RetentionPolicy{Category: category, Retention: r})
}

func validateCategory(category string) error {
	if err := validateName("category", category, MaxStreamIDLen); err != nil {
		return err
	}
	if Category(category) != category {
		return invalidf("category %q contains '-'", category)
	}
	return nil
}

func (s *Store) setRetention(ctx context.Context, p RetentionPolicy) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := p.Retention.validate(); err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	r, err := s.retainer()
	if err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	if err := r.SetRetention(ctx, p); err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	return nil
}

// Retention returns the retention that applies to a stream: its own
// policy, or else its category's, or else the zero Retention, which keeps
// everything. The stream need not exist.
func (s *Store) Retention(ctx context.Context, stream string) (Retention, error) {
	if err := s.checkOpen(); err != nil {
		return Retention{}, err
	}
	if err := ValidateStreamID(stream); err != nil {
		return Retention{}, fmt.Errorf("retention: %w", err)
	}
	if _, err := s.retainer(); err != nil {
		return Retention{}, fmt.Errorf("retention: %w", err)
	}
	return Retention{}, fmt.Errorf("retention: %w", errors.ErrUnsupported)
}

// Retentions returns every stored retention policy: the streams' own, in
// order of stream ID, then the categories', in order of category.
func (s *Store) Retentions(ctx context.Context) ([]RetentionPolicy, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	r, err := s.retainer()
	if err != nil {
		return nil, fmt.Errorf("retentions: %w", err)
	}
	ps, err := r.Retentions(ctx)
	if err != nil {
		return nil, fmt.Errorf("retentions: %w", err)
	}
	return ps, nil
}

// retainer returns the backend's [Retainer], or [errors.ErrUnsupported].
func (s *Store) retainer() (Retainer, error) {
	if s.caps.retainer == nil {
		return nil, fmt.Errorf("the backend keeps no retention policies: %w", errors.ErrUnsupported)
	}
	return s.caps.retainer, nil
}

// DefaultPruneBatch is the default [PruneOptions.BatchSize].
const DefaultPruneBatch = 1000

// MaxPruneBatch is the largest [PruneOptions.BatchSize].
const MaxPruneBatch = 100_000

// PruneOptions configure [Store.Prune]. The zero value prunes every
// expired event.
type PruneOptions struct {
	// After names the forwarders and durable consumers that must have
	// passed an event before it is removed: an event is removed only once
	// every one of them has checkpointed at or past its position. A name
	// is a [Forwarder]'s name (its checkpoint "outbox/" + name) or a
	// consumer's name (for a consumer group, every member's checkpoint;
	// a member without a checkpoint holds everything back). A name that
	// has no checkpoint is [ErrUnknownConsumer] and nothing is removed,
	// so that a typo never lets unshipped events go. Default: none.
	After []string
	// BatchSize is the most events one write transaction removes, so that
	// an Append never waits long for a prune. Default:
	// [DefaultPruneBatch]; at most [MaxPruneBatch].
	BatchSize int
	// Progress, when set, is called after each batch with the running
	// totals, from the goroutine that called Prune. Default: none.
	Progress func(PruneResult)
}

// PruneResult is what [Store.Prune] did.
type PruneResult struct {
	// Events is how many expired events it removed.
	Events int64
	// Streams is how many streams it removed events of.
	Streams int64
	// Snapshots is how many snapshots it removed: those below the last
	// pruned version of their stream.
	Snapshots int64
	// KeptBack is how many expired events it left because a name of
	// [PruneOptions.After] had not passed them yet.
	KeptBack int64
	// Duration is how long it took.
	Duration time.Duration
}

// Prune removes the expired events (see [Retention]) from storage for
// good, with the snapshots of their streams below the last removed
// version (a snapshot at that version is kept: it is the state the
// retained events go on from). It works in batches of
// [PruneOptions.BatchSize] events, each in a short write transaction of
// its own, so concurrent Appends wait for a batch at most; a cancelled ctx
// stops it between batches, with what it removed so far committed and
// counted in the result it returns with ctx's error.
//
// Prune reads the policies from storage first, so it applies those another
// process has set too.
//
// Positions of removed events are never given again, and a stream keeps
// its version when all its events have been removed: StreamVersion and
// Appends carry on from there. A subscription or consumer that had not yet
// read a removed range goes on from the next event that exists, and the
// hooks say so ("subscription.events_pruned"). Events of earlier lives of
// a deleted stream that has a policy expire as a whole, as KurrentDB's
// scavenge removes a deleted stream's events; those of a stream without a
// policy stay in the global log, as [Store.DeleteStream] promises.
//
// An idempotent retry of an Append whose events were removed is no longer
// recognised, and appends them again.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	if err := s.checkOpen(); err != nil {
		return PruneResult{}, err
	}
	if _, err := s.retainer(); err != nil {
		return PruneResult{}, fmt.Errorf("prune: %w", err)
	}
	return PruneResult{}, fmt.Errorf("prune: %w", errors.ErrUnsupported)
}

// PruneEvery runs [Store.Prune] with opts at once and then every interval,
// until ctx ends (it returns ctx's error) or the store is closed
// ([ErrClosed]): a device calls it in a goroutine of its own. A failed run
// does not stop it: it is reported to the hooks ("prune.failed") and
// counted in [Stats], and the next run tries again. Each run is reported as
// the "prune" operation, with "prune.done" or "prune.failed", and, when
// events were kept back, "prune.kept_back". An interval of 0 or less, or
// options that [Store.Prune] refuses before it removes anything (a
// BatchSize out of range), are [ErrInvalidArgument] at once; a name of
// After without a checkpoint is not, since a forwarder may not have
// shipped its first batch yet: each run then fails until it has.
func (s *Store) PruneEvery(ctx context.Context, interval time.Duration, opts PruneOptions) error {
	if interval <= 0 {
		return fmt.Errorf("prune every: %w", invalidf("interval %v: must be > 0", interval))
	}
	return fmt.Errorf("prune every: %w", errors.ErrUnsupported)
}
