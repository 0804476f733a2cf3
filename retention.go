package eventstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// A [Repository] loads a truncated stream from a snapshot taken at or
// after its last expired version (Prune keeps that one); without such a
// snapshot it folds only the retained events, so give the streams of an
// aggregate a retention only together with snapshots.
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
//
// A Store reads the policies once and keeps them, so that ReadStream costs
// nothing more for a stream without one: a policy that another process
// (the eventstore command) sets applies to this Store's reads from its next
// [Store.Prune], [Store.Retention] or [Store.Retentions] on.
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
	rs := &s.retention
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if err := r.SetRetention(ctx, p); err != nil {
		return fmt.Errorf("set retention: %w", err)
	}
	if old := rs.cache.Load(); old != nil {
		rs.cache.Store(old.with(p))
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
	p, _, err := s.loadPolicies(ctx)
	if err != nil {
		return Retention{}, fmt.Errorf("retention %s: %w", stream, err)
	}
	return p.of(stream), nil
}

// Retentions returns every stored retention policy: the streams' own, in
// order of stream ID, then the categories', in order of category.
func (s *Store) Retentions(ctx context.Context) ([]RetentionPolicy, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	_, ps, err := s.loadPolicies(ctx)
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

// DefaultPruneBatch is the default [PruneOptions.BatchSize]. On SQLite a
// batch of 250 events holds the writer for about two milliseconds (its
// DELETE half of it), so that a concurrent Append's p99 stays within a few
// milliseconds, and the whole prune takes about as long as with larger
// batches (bench/README.md).
const DefaultPruneBatch = 250

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
	// KeepSpace leaves the room of the removed events in the storage, for
	// later events to use, instead of giving it back to the file system at
	// the end of the prune. Set it for frequent prunes of a store that
	// keeps growing to the same size, as [Store.PruneEvery] on a device:
	// shrinking a file that grows again at once only writes more (wear on
	// an SD card), while the room is reused anyway. Default: false, the
	// space is given back.
	KeepSpace bool
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
	// Reclaimed is how many bytes the storage shrank by after the prune:
	// Prune gives the room of the events it removed back to the file
	// system itself, as [Store.ReclaimSpace] does, when the backend keeps
	// it ([SpaceReclaimer]; SQLite does).
	Reclaimed int64
	// Duration is how long it took, giving the space back included.
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
// When it has removed events, Prune ends by giving their room back to the
// file system, as [Store.ReclaimSpace] does (on SQLite, in short steps of
// incremental vacuum that writers wait for at most one of), so that the
// file shrinks; [PruneResult.Reclaimed] says by how much. A cancelled ctx
// skips it; a later Prune or ReclaimSpace gives the room back then.
// [PruneOptions.KeepSpace] leaves it for later events instead.
//
// An idempotent retry of an Append whose events were removed is no longer
// recognised, and appends them again.
func (s *Store) Prune(ctx context.Context, opts PruneOptions) (PruneResult, error) {
	if err := s.checkOpen(); err != nil {
		return PruneResult{}, err
	}
	if err := opts.validate(); err != nil {
		return PruneResult{}, fmt.Errorf("prune: %w", err)
	}
	rt, err := s.retainer()
	if err != nil {
		return PruneResult{}, fmt.Errorf("prune: %w", err)
	}
	end := s.begin(ctx, "prune", "")
	t0 := time.Now()
	res, err := s.prune(ctx, rt, opts)
	if err == nil && res.Events > 0 && !opts.KeepSpace && s.caps.reclaimer != nil {
		res.Reclaimed, err = s.ReclaimSpace(ctx)
	}
	res.Duration = time.Since(t0)
	end(Outcome{Events: int(res.Events), Err: err})
	s.counters.eventsPruned.Add(uint64(res.Events))
	if err != nil {
		s.counters.pruneFailures.Add(1)
		s.happened(ctx, Happening{Category: CategoryPersistence, Name: "prune.failed", Events: int(res.Events), Duration: res.Duration, Err: err})
		return res, fmt.Errorf("prune: %w", err)
	}
	s.counters.prunes.Add(1)
	s.counters.keptBack.Store(res.KeptBack)
	s.happened(ctx, Happening{Category: CategoryPersistence, Name: "prune.done", Events: int(res.Events), Duration: res.Duration})
	if res.KeptBack > 0 {
		s.happened(ctx, Happening{Category: CategoryPersistence, Name: "prune.kept_back", Events: int(res.KeptBack)})
	}
	return res, nil
}

func (o PruneOptions) validate() error {
	if o.BatchSize < 0 || o.BatchSize > MaxPruneBatch {
		return invalidf("batch size %d: must be from 0 to %d", o.BatchSize, MaxPruneBatch)
	}
	for _, name := range o.After {
		if err := validateName("consumer name", name, MaxStreamIDLen); err != nil {
			return err
		}
	}
	return nil
}

// prune removes what the policies expire, stream by stream, batch by
// batch.
func (s *Store) prune(ctx context.Context, rt Retainer, opts PruneOptions) (PruneResult, error) {
	var res PruneResult
	bound, err := s.pruneBound(ctx, opts.After)
	if err != nil {
		return res, err
	}
	p, _, err := s.loadPolicies(ctx)
	if err != nil {
		return res, err
	}
	batch := cmp.Or(opts.BatchSize, DefaultPruneBatch)
	now := s.now()
	pruneStream := func(stream string, r Retention) error {
		counted := false
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			b, err := s.pruneBatch(ctx, rt, PruneRequest{Stream: stream, Retention: r, Now: now, MaxPosition: bound, Limit: batch})
			if err != nil {
				return fmt.Errorf("%s: %w", stream, err)
			}
			res.Events += b.Events
			res.Snapshots += b.Snapshots
			if b.Events > 0 {
				if !counted {
					res.Streams++
					counted = true
				}
				if opts.Progress != nil {
					opts.Progress(res)
				}
			}
			if !b.More {
				res.KeptBack += b.KeptBack
				return nil
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(p.streams)) {
		if err := pruneStream(id, p.streams[id]); err != nil {
			return res, err
		}
	}
	const page = 256
	for _, c := range slices.Sorted(maps.Keys(p.categories)) {
		for after := ""; ; {
			ids, err := rt.StoredStreams(ctx, c, after, page)
			if err != nil {
				return res, err
			}
			for _, id := range ids {
				if _, own := p.streams[id]; own {
					continue
				}
				if err := pruneStream(id, p.categories[c]); err != nil {
					return res, err
				}
			}
			if len(ids) < page {
				break
			}
			after = ids[len(ids)-1]
		}
	}
	return res, nil
}

// pruneBatch runs one batch, and records the range it removed for the
// subscriptions, before any of them can take the gap for one it may not
// report.
func (s *Store) pruneBatch(ctx context.Context, rt Retainer, req PruneRequest) (PruneBatch, error) {
	rs := &s.retention
	rs.batches.Add(1)
	defer rs.batches.Add(-1)
	rs.rangesMu.Lock()
	defer rs.rangesMu.Unlock()
	b, err := rt.PruneStream(ctx, req)
	if err == nil && b.Events > 0 {
		rs.record(prunedRange{stream: req.Stream, first: b.First, last: b.Last})
	}
	return b, err
}

// pruneBound returns the highest position that every name of after has
// passed: the lowest of their checkpoints.
func (s *Store) pruneBound(ctx context.Context, after []string) (int64, error) {
	bound := int64(math.MaxInt64)
	if len(after) == 0 {
		return bound, nil
	}
	cps, err := s.backend.Checkpoints(ctx)
	if err != nil {
		return 0, err
	}
	for _, name := range after {
		found := false
		members := map[int]int{} // group size -> members with a checkpoint
		for _, c := range cps {
			if c.Key != name && c.Key != forwarderPrefix+name {
				size, ok := memberOf(c.Key, name)
				if !ok {
					continue
				}
				members[size]++
			}
			found = true
			bound = min(bound, c.Position)
		}
		if !found {
			return 0, fmt.Errorf("%w: %q has no checkpoint", ErrUnknownConsumer, name)
		}
		for size, n := range members {
			if n < size { // a member that has processed nothing yet
				bound = 0
			}
		}
	}
	return bound, nil
}

// memberOf reports whether key is the checkpoint key of a member of the
// consumer group name (see [ConsumerKey]), and the group's size.
func memberOf(key, name string) (int, bool) {
	rest, ok := strings.CutPrefix(key, name+"[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	m, n, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, false
	}
	member, err1 := strconv.Atoi(m)
	size, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil || member < 0 || member >= size {
		return 0, false
	}
	return size, true
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
// shipped its first batch yet: each run then fails until it has. A device
// that prunes often sets [PruneOptions.KeepSpace], so that its file stays
// at its size instead of shrinking and growing again at every run.
func (s *Store) PruneEvery(ctx context.Context, interval time.Duration, opts PruneOptions) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if interval <= 0 {
		return fmt.Errorf("prune every: %w", invalidf("interval %v: must be > 0", interval))
	}
	if err := opts.validate(); err != nil {
		return fmt.Errorf("prune every: %w", err)
	}
	if _, err := s.retainer(); err != nil {
		return fmt.Errorf("prune every: %w", err)
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		// A failed run has been reported; the next one tries again.
		if _, err := s.Prune(ctx, opts); errors.Is(err, ErrClosed) {
			return ErrClosed
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closing:
			return ErrClosed
		case <-tick.C:
		}
	}
}

// retentionState is the Store's side of retention: its cache of the
// stored policies, and the ranges of positions its prunes removed.
type retentionState struct {
	mu    sync.Mutex // serialises loads and changes of the cache
	cache atomic.Pointer[policies]

	// rangesMu is held by a prune batch from before it commits until its
	// range is recorded, so that a subscription that finds a gap and then
	// reads ranges always finds the range of the batch that made it.
	rangesMu sync.RWMutex
	ranges   []prunedRange
	// batches counts the prune batches running, and high is the highest
	// position of the ranges, so that a subscription past every range
	// skips them without a lock: a batch counts itself before it commits
	// and stops counting after it has recorded its range.
	batches atomic.Int32
	high    atomic.Int64
}

// maxPrunedRanges bounds the ranges a Store remembers.
const maxPrunedRanges = 4096

// prunedRange is a range of positions in which a prune removed events of
// one stream.
type prunedRange struct {
	stream      string
	first, last int64
}

// record adds r, merged with the last range when they are of one stream;
// the oldest half goes when there are too many. rangesMu is held.
func (rs *retentionState) record(r prunedRange) {
	if r.last > rs.high.Load() {
		rs.high.Store(r.last)
	}
	if n := len(rs.ranges); n > 0 && rs.ranges[n-1].stream == r.stream {
		last := &rs.ranges[n-1]
		last.first, last.last = min(last.first, r.first), max(last.last, r.last)
		return
	}
	if len(rs.ranges) == maxPrunedRanges {
		rs.ranges = slices.Delete(rs.ranges, 0, maxPrunedRanges/2)
	}
	rs.ranges = append(rs.ranges, r)
}

// prunedIn returns the part of the positions from..to, inclusive, over
// which this Store has pruned events that filter may match, and whether
// there is any.
func (s *Store) prunedIn(filter Filter, from, to int64) (lo, hi int64, ok bool) {
	rs := &s.retention
	rs.rangesMu.RLock()
	defer rs.rangesMu.RUnlock()
	for _, r := range rs.ranges {
		if r.last < from || r.first > to || !filter.mayMatchStream(r.stream) {
			continue
		}
		a, b := max(r.first, from), min(r.last, to)
		if !ok {
			lo, hi, ok = a, b, true
		}
		lo, hi = min(lo, a), max(hi, b)
	}
	return lo, hi, ok
}

// reportPruned tells the hooks when events of the positions from..to,
// which sub goes on past unread, were pruned by this Store.
func (s *Store) reportPruned(ctx context.Context, sub *Subscription, filter Filter, from, to int64) {
	if from > to || s.retention.batches.Load() == 0 && from > s.retention.high.Load() {
		return
	}
	if lo, hi, ok := s.prunedIn(filter, from, to); ok {
		s.happened(ctx, Happening{Category: CategorySubscriptions, Name: "subscription.events_pruned", Consumer: sub.owner, From: lo, Position: hi})
	}
}

// mayMatchStream reports whether f may match events of stream: whether its
// stream fields do.
func (f Filter) mayMatchStream(stream string) bool {
	if len(f.Streams) > 0 && !slices.Contains(f.Streams, stream) {
		return false
	}
	if len(f.Categories) > 0 && !slices.Contains(f.Categories, Category(stream)) {
		return false
	}
	if f.StreamGlob != "" {
		if ok, _ := path.Match(f.StreamGlob, stream); !ok {
			return false
		}
	}
	return true
}

// policies is a Store's copy of the stored retention policies. It is
// never changed: a change replaces it.
type policies struct {
	streams    map[string]Retention
	categories map[string]Retention
}

func newPolicies(ps []RetentionPolicy) *policies {
	p := &policies{streams: map[string]Retention{}, categories: map[string]Retention{}}
	for _, rp := range ps {
		if rp.Stream != "" {
			p.streams[rp.Stream] = rp.Retention
		} else {
			p.categories[rp.Category] = rp.Retention
		}
	}
	return p
}

// of returns the retention of stream.
func (p *policies) of(stream string) Retention {
	if r, ok := p.streams[stream]; ok {
		return r
	}
	return p.categories[Category(stream)]
}

func (p *policies) empty() bool { return len(p.streams) == 0 && len(p.categories) == 0 }

// with returns p with rp stored.
func (p *policies) with(rp RetentionPolicy) *policies {
	c := &policies{streams: maps.Clone(p.streams), categories: maps.Clone(p.categories)}
	m, key := c.streams, rp.Stream
	if rp.Stream == "" {
		m, key = c.categories, rp.Category
	}
	if rp.Retention.IsZero() {
		delete(m, key)
	} else {
		m[key] = rp.Retention
	}
	return c
}

// loadPolicies reads the policies from the backend into the cache, and
// returns them.
func (s *Store) loadPolicies(ctx context.Context) (*policies, []RetentionPolicy, error) {
	rt, err := s.retainer()
	if err != nil {
		return nil, nil, err
	}
	rs := &s.retention
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ps, err := rt.Retentions(ctx)
	if err != nil {
		return nil, nil, err
	}
	p := newPolicies(ps)
	rs.cache.Store(p)
	return p, ps, nil
}

// truncates reports whether a ReadStream must look at retention: the
// backend keeps policies, and some are stored or they are not loaded yet.
// It is the whole cost of retention for a read when no policy is set.
func (s *Store) truncates() bool {
	if s.caps.retainer == nil {
		return false
	}
	p := s.retention.cache.Load()
	return p == nil || !p.empty()
}

// readRetained is ReadStream for a store with policies: it reads from the
// stream's first retained version on.
func (s *Store) readRetained(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[RecordedEvent, error] {
	return func(yield func(RecordedEvent, error) bool) {
		p := s.retention.cache.Load()
		if p == nil {
			var err error
			if p, _, err = s.loadPolicies(ctx); err != nil {
				yield(RecordedEvent{}, fmt.Errorf("read stream %s: %w", stream, err))
				return
			}
		}
		r := p.of(stream)
		if r.IsZero() {
			for e, err := range s.readStream(ctx, stream, opts) {
				if !yield(e, err) {
					return
				}
			}
			return
		}
		floor, err := s.caps.retainer.RetainedFrom(ctx, stream, r, s.now())
		if err != nil {
			yield(RecordedEvent{}, fmt.Errorf("read stream %s: %w", stream, err))
			return
		}
		if !opts.Backward {
			opts.From = max(opts.From, floor)
		} else if opts.From != 0 && opts.From < floor {
			return // all expired at or below From
		}
		for e, err := range s.readStream(ctx, stream, opts) {
			if err == nil && e.Version < floor {
				return // backward, down to the expired versions
			}
			if !yield(e, err) {
				return
			}
		}
	}
}
