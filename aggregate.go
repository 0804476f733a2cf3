package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"sync/atomic"
)

// Fold reduces a sequence of events to a state: f is applied to init and
// each event in turn. It stops at the first error, of the sequence or of f,
// and returns it with the state reached so far.
func Fold[S any](seq iter.Seq2[RecordedEvent, error], init S, f func(S, RecordedEvent) (S, error)) (S, error) {
	state := init
	for e, err := range seq {
		if err != nil {
			return state, err
		}
		if state, err = f(state, e); err != nil {
			return state, err
		}
	}
	return state, nil
}

// Codec maps a domain event type E to and from stored events. Encode sets
// Type, Data and, if it likes, Metadata; the [Repository] adds its own
// metadata. A [Registry] gives one with [RegistryCodec].
type Codec[E any] interface {
	Encode(E) (Event, error)
	Decode(RecordedEvent) (E, error)
}

// Decider is an aggregate as three pure parts: the state of a new
// aggregate, the decision a command leads to (events, or a domain error),
// and how an event changes the state.
type Decider[S, C, E any] struct {
	// Initial is the state of an aggregate that has no events yet.
	Initial S
	// Decide returns the events a command produces in a state, or a domain
	// error, which [Repository.Execute] returns matching both that error
	// and [ErrRejected]. No events (and no error) means there is nothing
	// to do.
	Decide func(state S, cmd C) ([]E, error)
	// Evolve returns the state after an event. It must not fail: events
	// are facts.
	Evolve func(state S, event E) S
}

// RepositoryOptions configure a [Repository]. The zero value, like nil,
// gives the defaults.
type RepositoryOptions[S any] struct {
	// SnapshotEvery, when positive, saves a snapshot of the state each time
	// an Execute takes the stream across a multiple of that many events
	// (not only when it lands on one), after the append. Default: 0, none.
	SnapshotEvery int
	// MaxRetries is how many times Execute reloads and decides again after
	// a version conflict. Default: 3. Negative: no retry.
	MaxRetries int
	// EncodeState and DecodeState turn a state into snapshot data and
	// back. Default: encoding/json.
	EncodeState func(S) ([]byte, error)
	DecodeState func([]byte) (S, error)
	// SnapshotVersion is the version of the state's shape: raise it when
	// a change to S (or to DecodeState) makes older snapshots wrong. It is
	// stored in each snapshot's metadata, as {"state_version": n}, and a
	// snapshot of another version, or one that fails to load or decode, is
	// ignored: the aggregate is replayed from its events, the next Execute
	// that appends saves a snapshot of the current version, and the
	// snapshot is counted in [RepositoryStats].SnapshotsIgnored and
	// reported to [Hooks.Event] as "snapshot.ignored". A command never
	// fails because of a snapshot. Snapshots without a version (saved
	// before versions were stored, or by [Store.SaveSnapshot]) are version
	// 0. Default: 0.
	SnapshotVersion int
	// CacheSize, when positive, keeps the state and version of that many
	// of the most recently used aggregates in memory, so that loading a
	// cached aggregate skips the snapshot and the replay: it reads only
	// from its cached version on, which also checks that the stream is the
	// one cached (not deleted and started again) and folds in the events
	// others appended meanwhile. A version conflict drops the entry and
	// reloads. Callers never share a cached state: a state type that holds
	// no maps, slices, pointers, interfaces, channels or functions is
	// copied as a value, and any other is kept encoded by EncodeState and
	// decoded afresh for each use, so EncodeState and DecodeState must
	// round-trip it (as snapshots need). Default: 0, no cache.
	CacheSize int
}

// Repository loads and changes aggregates stored as streams: one stream
// per aggregate ID. It is safe for concurrent use.
type Repository[S, C, E any] struct {
	store   *Store
	decider Decider[S, C, E]
	codec   Codec[E]
	opts    RepositoryOptions[S]
	cache   *lru[string, cached[S]] // nil without CacheSize
	byValue bool                    // S copies as a value: cache it as it is

	commands, domainErrors, conflicts, snapshots, snapshotErrors atomic.Uint64
	snapshotsIgnored, cacheHits, cacheMisses                     atomic.Uint64
}

// cached is an aggregate in the cache: its state, as a value or encoded,
// as of the event at version and position.
type cached[S any] struct {
	state             S
	data              []byte
	version, position int64
}

// aggregate is an aggregate as loaded: its state as of the event at
// version and position (-1 and 0 for none).
type aggregate[S any] struct {
	state             S
	version, position int64
	snapshotIgnored   bool // a snapshot was there but unusable
}

// NewRepository returns a repository of the aggregates that decider
// defines, stored in store, with events encoded by codec. A nil store,
// codec, Decide or Evolve is a programming error: NewRepository panics,
// with an error matching [ErrInvalidArgument] that names it, rather than
// the first Execute failing far from the mistake.
func NewRepository[S, C, E any](store *Store, decider Decider[S, C, E], codec Codec[E], opts *RepositoryOptions[S]) *Repository[S, C, E] {
	var missing string
	switch {
	case store == nil:
		missing = "nil store"
	case decider.Decide == nil:
		missing = "nil Decider.Decide"
	case decider.Evolve == nil:
		missing = "nil Decider.Evolve"
	case isNil(codec):
		missing = "nil codec"
	}
	if missing != "" {
		panic(fmt.Errorf("eventstore: NewRepository: %w", invalidf("%s", missing)))
	}
	var o RepositoryOptions[S]
	if opts != nil {
		o = *opts
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.EncodeState == nil {
		o.EncodeState = func(s S) ([]byte, error) { return json.Marshal(s) }
	}
	if o.DecodeState == nil {
		o.DecodeState = func(b []byte) (S, error) {
			var s S
			err := json.Unmarshal(b, &s)
			return s, err
		}
	}
	r := &Repository[S, C, E]{store: store, decider: decider, codec: codec, opts: o, byValue: !holdsReferences(reflect.TypeFor[S]())}
	if o.CacheSize > 0 {
		r.cache = newLRU[string, cached[S]](o.CacheSize)
	}
	return r
}

// holdsReferences reports whether a value of type t can share memory with
// its copy.
func holdsReferences(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return holdsReferences(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsReferences(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// Load returns the current state of the aggregate id and its version (-1
// for one with no events): from the cache, or from its latest snapshot,
// if any, plus the events after it. A snapshot whose own event is no
// longer in the stream (deleted, and perhaps started again, since) is
// passed over, and so is one of another [RepositoryOptions.SnapshotVersion]
// or that fails to decode.
func (r *Repository[S, C, E]) Load(ctx context.Context, id string) (S, int64, error) {
	a, err := r.load(ctx, id)
	return a.state, a.version, err
}

// load loads the aggregate id, and caches it.
func (r *Repository[S, C, E]) load(ctx context.Context, id string) (aggregate[S], error) {
	if a, ok := r.fromCache(ctx, id); ok {
		return a, nil
	}
	a, err := r.fromSnapshot(ctx, id)
	if err != nil {
		return a, err
	}
	r.toCache(id, a)
	return a, nil
}

// fromCache loads the aggregate id from its cache entry and the events
// after it. It reports false, having dropped the entry, when there is none
// or the stream is no longer the one cached.
func (r *Repository[S, C, E]) fromCache(ctx context.Context, id string) (aggregate[S], bool) {
	if r.cache == nil {
		return aggregate[S]{}, false
	}
	c, ok := r.cache.get(id)
	a := aggregate[S]{state: c.state, version: c.version, position: c.position}
	if ok && !r.byValue {
		var err error
		a.state, err = r.opts.DecodeState(c.data)
		ok = err == nil
	}
	if ok {
		var stale bool
		var err error
		if a, stale, err = r.fold(ctx, id, a); err == nil && !stale {
			r.cacheHits.Add(1)
			if a.version != c.version {
				r.toCache(id, a)
			}
			return a, true
		}
		r.cache.remove(id)
	}
	r.cacheMisses.Add(1)
	return aggregate[S]{}, false
}

// toCache caches a, when there is a cache.
func (r *Repository[S, C, E]) toCache(id string, a aggregate[S]) {
	if r.cache == nil {
		return
	}
	c := cached[S]{version: a.version, position: a.position}
	if r.byValue {
		c.state = a.state
	} else {
		data, err := r.opts.EncodeState(a.state)
		if err != nil {
			r.cache.remove(id)
			return
		}
		c.data = data
	}
	r.cache.put(id, c)
}

// stateVersion is the metadata of the snapshots a [Repository] saves.
type stateVersion struct {
	StateVersion int `json:"state_version"`
}

// fromSnapshot loads the aggregate id from its latest usable snapshot and
// the events after it, or from all its events.
func (r *Repository[S, C, E]) fromSnapshot(ctx context.Context, id string) (aggregate[S], error) {
	snap, err := r.store.LoadSnapshot(ctx, id)
	ignored := false
	switch {
	case err == nil:
		var reason error
		var md stateVersion
		_ = json.Unmarshal(snap.Metadata, &md) // none, or not ours: version 0
		if md.StateVersion != r.opts.SnapshotVersion {
			reason = fmt.Errorf("snapshot at version %d is of state version %d, not %d", snap.Version, md.StateVersion, r.opts.SnapshotVersion)
		} else if state, err := r.opts.DecodeState(snap.Data); err != nil {
			reason = fmt.Errorf("snapshot at version %d: decode state: %w", snap.Version, err)
		} else {
			a, stale, err := r.fold(ctx, id, aggregate[S]{state: state, version: snap.Version, position: snap.Position})
			if err != nil || !stale {
				return a, err
			}
			// The stream was deleted, and perhaps started again, after the
			// snapshot was loaded: it is not of the life read.
		}
		if reason != nil {
			ignored = true
			r.ignoreSnapshot(ctx, id, snap.Version, reason)
		}
	case errors.Is(err, ErrSnapshotNotFound), errors.Is(err, errors.ErrUnsupported):
	case ctx.Err() != nil, errors.Is(err, ErrClosed):
		return aggregate[S]{state: r.decider.Initial, version: -1}, fmt.Errorf("load %s: %w", id, err)
	default:
		ignored = true
		r.ignoreSnapshot(ctx, id, -1, err)
	}
	a, _, err := r.fold(ctx, id, aggregate[S]{state: r.decider.Initial, version: -1})
	a.snapshotIgnored = ignored
	return a, err
}

// ignoreSnapshot counts and reports a snapshot that could not be used.
func (r *Repository[S, C, E]) ignoreSnapshot(ctx context.Context, id string, version int64, reason error) {
	r.snapshotsIgnored.Add(1)
	r.store.happened(ctx, Happening{Category: CategoryPersistence, Name: "snapshot.ignored", Stream: id, Position: version,
		Err: fmt.Errorf("load %s: snapshot ignored, replaying its events: %w", id, reason)})
}

// fold evolves a with the events after it. When a is pinned to the
// position of its event, fold reads from that event and reports stale,
// having folded nothing, unless it is there: otherwise a is of another
// life of the stream.
func (r *Repository[S, C, E]) fold(ctx context.Context, id string, a aggregate[S]) (_ aggregate[S], stale bool, err error) {
	pinned := a.version >= 0 && a.position > 0
	from := a.version + 1
	if pinned {
		from = a.version
	}
	for e, err := range r.store.ReadStream(ctx, id, ReadOptions{From: from}) {
		if errors.Is(err, ErrStreamNotFound) {
			return a, pinned, nil // a new aggregate, or one of a deleted stream
		}
		if err != nil {
			return a, false, fmt.Errorf("load %s: %w", id, err)
		}
		if pinned {
			pinned = false
			if e.Version == a.version && e.Position == a.position {
				continue // a's own event: already in the state
			}
			// Unless a prune removed a's own event (it keeps the
			// snapshot at the last version it removed), and the
			// retained events go on from it, a is of another life.
			if e.Version != a.version+1 || e.Position <= a.position {
				return a, true, nil
			}
		}
		ev, err := r.codec.Decode(e)
		if err != nil {
			return a, false, fmt.Errorf("load %s: event %d: %w", id, e.Version, err)
		}
		a.state, a.version, a.position = r.decider.Evolve(a.state, ev), e.Version, e.Position
	}
	return a, pinned, nil // still pinned: the stream is shorter than a
}

// Result is what [Repository.Execute] returns.
type Result[S, E any] struct {
	State    S     // the state after the command
	Version  int64 // the aggregate's version after the command
	Position int64 // global position of the last event written; 0 when none
	Events   []E   // the events the command produced; none for a no-op
}

// Execute handles a command: it loads the aggregate, decides, and appends
// the events with the loaded version as the expected version, so that two
// commands on one aggregate never both succeed on the same state. On a
// version conflict it loads and decides again, up to MaxRetries times. A
// domain error from Decide writes nothing and comes back matching both
// itself and [ErrRejected] (with its own message, to show to the user);
// a command that produces no events writes nothing and is not an error.
// Every metadata map is merged into the metadata of every event written
// (see [CausedBy] and [Correlate]).
func (r *Repository[S, C, E]) Execute(ctx context.Context, id string, cmd C, metadata ...Metadata) (Result[S, E], error) {
	for attempt := 0; ; attempt++ {
		a, err := r.load(ctx, id)
		if err != nil {
			return Result[S, E]{}, err
		}
		state, version := a.state, a.version
		events, err := r.decider.Decide(state, cmd)
		if err != nil {
			r.domainErrors.Add(1)
			return Result[S, E]{State: state, Version: version}, rejected{err}
		}
		if len(events) == 0 {
			r.commands.Add(1)
			return Result[S, E]{State: state, Version: version}, nil
		}
		encoded := make([]Event, len(events))
		for i, e := range events {
			if encoded[i], err = r.codec.Encode(e); err != nil {
				return Result[S, E]{}, fmt.Errorf("execute %s: encode event %d: %w", id, i, err)
			}
			for _, md := range metadata {
				if encoded[i].Metadata, err = md.mergeInto(encoded[i].Metadata); err != nil {
					return Result[S, E]{}, fmt.Errorf("execute %s: %w", id, err)
				}
			}
		}
		res, err := r.store.Append(ctx, id, Exact(version), encoded...)
		if err != nil && r.cache != nil {
			r.cache.remove(id) // reload from the store, not the cache
		}
		if errors.Is(err, ErrWrongExpectedVersion) && attempt < r.opts.MaxRetries {
			r.conflicts.Add(1)
			continue
		}
		if err != nil {
			return Result[S, E]{}, fmt.Errorf("execute %s: %w", id, err)
		}
		for _, e := range events {
			state = r.decider.Evolve(state, e)
		}
		r.commands.Add(1)
		r.toCache(id, aggregate[S]{state: state, version: res.Version, position: res.Position})
		r.maybeSnapshot(ctx, id, version, res, state, a.snapshotIgnored)
		return Result[S, E]{State: state, Version: res.Version, Position: res.Position, Events: events}, nil
	}
}

// maybeSnapshot saves a snapshot when the append took the event count
// (version+1) across a multiple of SnapshotEvery, or replaces one that was
// ignored. A failure is counted, not returned: the events are committed,
// and the next crossing tries again.
func (r *Repository[S, C, E]) maybeSnapshot(ctx context.Context, id string, before int64, after AppendResult, state S, replace bool) {
	n := int64(r.opts.SnapshotEvery)
	if n <= 0 || (!replace && (before+1)/n == (after.Version+1)/n) {
		return
	}
	data, err := r.opts.EncodeState(state)
	var md []byte
	if err == nil {
		md, err = json.Marshal(stateVersion{r.opts.SnapshotVersion})
	}
	if err == nil {
		// Pinned to the appended event: if the stream was deleted and
		// started again meanwhile, this state is not its.
		err = r.store.saveSnapshot(ctx, Snapshot{StreamID: id, Version: after.Version, Position: after.Position, Data: data, Metadata: md})
	}
	if err != nil {
		r.snapshotErrors.Add(1)
		return
	}
	r.snapshots.Add(1)
}

// RepositoryStats counts what a [Repository] has done since it was made.
type RepositoryStats struct {
	Commands         uint64 // commands executed, with or without events
	DomainErrors     uint64 // commands refused by Decide
	ConflictsRetried uint64 // version conflicts that led to a reload
	Snapshots        uint64 // snapshots saved
	SnapshotErrors   uint64 // snapshots that could not be saved
	SnapshotsIgnored uint64 // snapshots of another SnapshotVersion, or that failed to load or decode
	CacheHits        uint64 // loads served from the cache
	CacheMisses      uint64 // loads with a cache that did not hold the aggregate, or held a stale one
}

// Stats returns the repository's counters.
func (r *Repository[S, C, E]) Stats() RepositoryStats {
	return RepositoryStats{
		Commands:         r.commands.Load(),
		DomainErrors:     r.domainErrors.Load(),
		ConflictsRetried: r.conflicts.Load(),
		Snapshots:        r.snapshots.Load(),
		SnapshotErrors:   r.snapshotErrors.Load(),
		SnapshotsIgnored: r.snapshotsIgnored.Load(),
		CacheHits:        r.cacheHits.Load(),
		CacheMisses:      r.cacheMisses.Load(),
	}
}

// AggregateInfo describes one aggregate's stream.
type AggregateInfo struct {
	Version         int64 // last version; -1 with no events
	Events          int64 // events in its stream
	HasSnapshot     bool
	SnapshotVersion int64 // version of the latest snapshot; -1 without one
}

// Info describes the aggregate id without loading its events.
func (r *Repository[S, C, E]) Info(ctx context.Context, id string) (AggregateInfo, error) {
	v, err := r.store.StreamVersion(ctx, id)
	if err != nil {
		return AggregateInfo{}, err
	}
	info := AggregateInfo{Version: v, Events: v + 1, SnapshotVersion: -1}
	snap, err := r.store.LoadSnapshot(ctx, id)
	switch {
	case err == nil:
		info.HasSnapshot, info.SnapshotVersion = true, snap.Version
	case errors.Is(err, ErrSnapshotNotFound), errors.Is(err, errors.ErrUnsupported):
	default:
		return AggregateInfo{}, err
	}
	return info, nil
}

// rejected is a domain error from Decide: it reads as that error, and
// matches it and [ErrRejected].
type rejected struct{ err error }

func (e rejected) Error() string   { return e.err.Error() }
func (e rejected) Unwrap() []error { return []error{e.err, ErrRejected} }

// Metadata is event metadata as a JSON object. [Repository.Execute]
// merges it into the metadata of the events it writes.
type Metadata map[string]any

// Metadata keys for tracing cause and effect across events.
const (
	CorrelationKey = "correlation_id" // the conversation an event belongs to
	CausationKey   = "causation_id"   // the event or command that caused it
)

// Correlate returns metadata that puts events in the conversation id, and
// names id as their cause: for the events of a command that starts one.
func Correlate(id string) Metadata {
	return Metadata{CorrelationKey: id, CausationKey: id}
}

// CausedBy returns metadata for events caused by e: e's ID as their
// causation ID, and e's correlation ID (or, when it has none, its ID) as
// theirs.
func CausedBy(e RecordedEvent) Metadata {
	corr := MetadataString(e.Metadata, CorrelationKey)
	if corr == "" {
		corr = e.ID.String()
	}
	return Metadata{CorrelationKey: corr, CausationKey: e.ID.String()}
}

// MetadataString returns the string at key in JSON metadata, or "".
func MetadataString(metadata []byte, key string) string {
	var m map[string]any
	if json.Unmarshal(metadata, &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return s
}

// mergeInto returns the JSON object md adds to (or replaces keys of) in
// existing, which must be empty or a JSON object.
func (md Metadata) mergeInto(existing []byte) ([]byte, error) {
	merged := map[string]any{}
	if len(existing) > 0 {
		if err := json.Unmarshal(existing, &merged); err != nil {
			return nil, invalidf("event metadata is not a JSON object: %v", err)
		}
	}
	for k, v := range md {
		merged[k] = v
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return nil, invalidf("metadata: %v", err)
	}
	return out, nil
}
