package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
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
	// error, which [Repository.Execute] returns as it is. No events (and no
	// error) means there is nothing to do.
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
}

// Repository loads and changes aggregates stored as streams: one stream
// per aggregate ID. It is safe for concurrent use.
type Repository[S, C, E any] struct {
	store   *Store
	decider Decider[S, C, E]
	codec   Codec[E]
	opts    RepositoryOptions[S]

	commands, domainErrors, conflicts, snapshots, snapshotErrors atomic.Uint64
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
	return &Repository[S, C, E]{store: store, decider: decider, codec: codec, opts: o}
}

// Load returns the current state of the aggregate id and its version (-1
// for one with no events): from its latest snapshot, if any, plus the
// events after it. A snapshot whose own event is no longer in the stream
// (deleted, and perhaps started again, since) is passed over.
func (r *Repository[S, C, E]) Load(ctx context.Context, id string) (S, int64, error) {
	state, version, _, err := r.load(ctx, id)
	return state, version, err
}

// load also reports the version of the snapshot it started from (-1 for
// none).
func (r *Repository[S, C, E]) load(ctx context.Context, id string) (state S, version, snapVersion int64, err error) {
	snap, err := r.store.LoadSnapshot(ctx, id)
	switch {
	case err == nil:
		if state, err = r.opts.DecodeState(snap.Data); err != nil {
			return state, -1, -1, fmt.Errorf("load %s: snapshot at version %d: %w", id, snap.Version, err)
		}
		folded, v, stale, err := r.fold(ctx, id, state, snap)
		if err != nil || !stale {
			return folded, v, snap.Version, err
		}
		// The stream was deleted, and perhaps started again, after the
		// snapshot was loaded: it is not of the life read.
	case errors.Is(err, ErrSnapshotNotFound), errors.Is(err, errors.ErrUnsupported):
	default:
		return r.decider.Initial, -1, -1, fmt.Errorf("load %s: %w", id, err)
	}
	state, version, _, err = r.fold(ctx, id, r.decider.Initial, Snapshot{Version: -1})
	return state, version, -1, err
}

// fold evolves state, the stream's state as of snap, with the events after
// it. When the snapshot records the position of its event, fold reads from
// that event and reports stale, having folded nothing, unless it is there:
// otherwise the snapshot is of another life of the stream.
func (r *Repository[S, C, E]) fold(ctx context.Context, id string, state S, snap Snapshot) (_ S, version int64, stale bool, err error) {
	version = snap.Version
	pinned := snap.Version >= 0 && snap.Position > 0
	from := snap.Version + 1
	if pinned {
		from = snap.Version
	}
	for e, err := range r.store.ReadStream(ctx, id, ReadOptions{From: from}) {
		if errors.Is(err, ErrStreamNotFound) {
			return state, version, pinned, nil // a new aggregate, or a snapshot of a deleted one
		}
		if err != nil {
			return state, -1, false, fmt.Errorf("load %s: %w", id, err)
		}
		if pinned {
			if e.Version != snap.Version || e.Position != snap.Position {
				return state, -1, true, nil
			}
			pinned = false // the snapshot's own event: already in the state
			continue
		}
		ev, err := r.codec.Decode(e)
		if err != nil {
			return state, -1, false, fmt.Errorf("load %s: event %d: %w", id, e.Version, err)
		}
		state, version = r.decider.Evolve(state, ev), e.Version
	}
	return state, version, pinned, nil // still pinned: the stream is shorter than the snapshot
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
// domain error from Decide is returned as it is and writes nothing; a
// command that produces no events writes nothing and is not an error.
// Every metadata map is merged into the metadata of every event written
// (see [CausedBy] and [Correlate]).
func (r *Repository[S, C, E]) Execute(ctx context.Context, id string, cmd C, metadata ...Metadata) (Result[S, E], error) {
	for attempt := 0; ; attempt++ {
		state, version, _, err := r.load(ctx, id)
		if err != nil {
			return Result[S, E]{}, err
		}
		events, err := r.decider.Decide(state, cmd)
		if err != nil {
			r.domainErrors.Add(1)
			return Result[S, E]{State: state, Version: version}, err
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
		r.maybeSnapshot(ctx, id, version, res, state)
		return Result[S, E]{State: state, Version: res.Version, Position: res.Position, Events: events}, nil
	}
}

// maybeSnapshot saves a snapshot when the append took the event count
// (version+1) across a multiple of SnapshotEvery. A failure is counted,
// not returned: the events are committed, and the next crossing tries
// again.
func (r *Repository[S, C, E]) maybeSnapshot(ctx context.Context, id string, before int64, after AppendResult, state S) {
	n := int64(r.opts.SnapshotEvery)
	if n <= 0 || (before+1)/n == (after.Version+1)/n {
		return
	}
	data, err := r.opts.EncodeState(state)
	if err == nil {
		// Pinned to the appended event: if the stream was deleted and
		// started again meanwhile, this state is not its.
		err = r.store.saveSnapshot(ctx, Snapshot{StreamID: id, Version: after.Version, Position: after.Position, Data: data})
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
}

// Stats returns the repository's counters.
func (r *Repository[S, C, E]) Stats() RepositoryStats {
	return RepositoryStats{
		Commands:         r.commands.Load(),
		DomainErrors:     r.domainErrors.Load(),
		ConflictsRetried: r.conflicts.Load(),
		Snapshots:        r.snapshots.Load(),
		SnapshotErrors:   r.snapshotErrors.Load(),
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
