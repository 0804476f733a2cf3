// Package eventstoretest is the conformance suite of the
// [eventstore.Backend] contract. Every backend runs it, the way
// testing/fstest checks a file system:
//
//	func TestConformance(t *testing.T) {
//		eventstoretest.Run(t, func(t *testing.T) eventstore.Backend {
//			return mybackend.New()
//		})
//	}
//
// The suite drives each backend through an [eventstore.Store], so it
// checks what users see. Each area of the contract has a file of its own.
// Every backend runs the sections of what every backend must do; the
// section of an optional capability ([eventstore.Transactor],
// [eventstore.ChangeWatcher], [eventstore.IntegrityChecker],
// [eventstore.Retainer]) runs when the backend has it, and the "Without"
// section checks the documented fallback of each on the backend with its
// capabilities hidden. A backend whose
// storage other processes can write to (a ChangeWatcher) passes
// [Options.NewPair] to [RunWith], so that the suite can open its storage
// twice.
package eventstoretest

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// NewBackend returns a fresh, empty backend for one test. The suite closes
// it (through the Store) when the test ends, unless the test closed it.
type NewBackend func(t *testing.T) eventstore.Backend

// Options configure [RunWith]. A nil *Options is the zero value.
type Options struct {
	// NewPair returns two backends on one fresh, empty storage, as two
	// processes would open it. The section of [eventstore.ChangeWatcher]
	// needs it; a backend that watches changes must give it. Default: none.
	NewPair func(t *testing.T) (first, second eventstore.Backend)
}

// Run runs the whole conformance suite against the backends that
// newBackend returns, one per subtest, as [RunWith] does with no options.
// Subtests run in parallel.
func Run(t *testing.T, newBackend NewBackend) { RunWith(t, newBackend, nil) }

// RunWith runs the whole conformance suite against the backends that
// newBackend returns: every section of the contract, and the section of
// each optional capability that the backend has.
func RunWith(t *testing.T, newBackend NewBackend, opts *Options) {
	if opts == nil {
		opts = &Options{}
	}
	probe := newBackend(t)
	_, transacts := probe.(eventstore.Transactor)
	_, watches := probe.(eventstore.ChangeWatcher)
	_, checks := probe.(eventstore.IntegrityChecker)
	_, reports := probe.(eventstore.CommitReporter)
	_, retains := probe.(eventstore.Retainer)
	if err := probe.Close(); err != nil {
		t.Fatalf("closing a new backend: %v", err)
	}

	t.Run("Append", func(t *testing.T) { testAppend(t, newBackend) })
	t.Run("IdempotencyKeys", func(t *testing.T) { testIdempotencyKeys(t, newBackend) })
	t.Run("ReadStream", func(t *testing.T) { testReadStream(t, newBackend) })
	t.Run("ReadAll", func(t *testing.T) { testReadAll(t, newBackend) })
	t.Run("ListStreams", func(t *testing.T) { testListStreams(t, newBackend) })
	t.Run("DeleteStream", func(t *testing.T) { testDeleteStream(t, newBackend) })
	t.Run("Concurrency", func(t *testing.T) { testConcurrency(t, newBackend) })
	t.Run("Validation", func(t *testing.T) { testValidation(t, newBackend) })
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newBackend) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, newBackend) })
	t.Run("Consumer", func(t *testing.T) { testConsumer(t, newBackend) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshots(t, newBackend) })
	t.Run("Outbox", func(t *testing.T) { testOutbox(t, newBackend) })
	t.Run("Progress", func(t *testing.T) { testProgress(t, newBackend) })
	t.Run("Purge", func(t *testing.T) { testPurge(t, newBackend) })
	t.Run("Verify", func(t *testing.T) { testVerify(t, newBackend) })
	t.Run("Without", func(t *testing.T) { testWithoutCapabilities(t, newBackend) })
	if transacts {
		t.Run("Transact", func(t *testing.T) { testTransact(t, newBackend) })
		t.Run("TxHandler", func(t *testing.T) { testTxHandler(t, newBackend) })
	}
	if watches {
		if opts.NewPair == nil {
			t.Fatal("the backend watches changes (eventstore.ChangeWatcher): give Options.NewPair to check it")
		}
		t.Run("ChangeWatcher", func(t *testing.T) { testChangeWatcher(t, opts.NewPair) })
	}
	if checks {
		t.Run("IntegrityChecker", func(t *testing.T) { testIntegrityChecker(t, newBackend) })
	}
	if reports {
		t.Run("CommitReporter", func(t *testing.T) { testCommitReporter(t, newBackend) })
	}
	if retains {
		t.Run("Retention", func(t *testing.T) { testRetention(t, newBackend) })
	}
}

// bundle is what a test works with.
type bundle struct {
	is      *is.I
	ctx     context.Context
	store   *eventstore.Store
	backend eventstore.Backend // the store's, for what only a backend shows
}

// setup returns a store on a fresh backend, closed when the test ends.
func setup(t *testing.T, newBackend NewBackend) *bundle {
	t.Helper()
	t.Parallel()
	backend := newBackend(t)
	s := eventstore.New(backend, nil)
	t.Cleanup(func() { _ = s.Close() })
	return &bundle{is: is.New(t), ctx: t.Context(), store: s, backend: backend}
}

// ev returns an event of type typ with a JSON object built from kv pairs
// as its data.
func ev(typ string, kv ...any) eventstore.Event {
	m := make(map[string]any, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	data, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return eventstore.Event{Type: typ, Data: data}
}

// numbered returns n events of type typ whose data is {"n": i}.
func numbered(typ string, n int) []eventstore.Event {
	events := make([]eventstore.Event, n)
	for i := range events {
		events[i] = ev(typ, "n", i)
	}
	return events
}

// appendOK appends and fails the test on error.
func (b *bundle) appendOK(stream string, expected eventstore.ExpectedVersion, events ...eventstore.Event) eventstore.AppendResult {
	b.is.Helper()
	res, err := b.store.Append(b.ctx, stream, expected, events...)
	b.is.NoErr(err) // append
	return res
}

// collect drains seq; it returns the elements before the first error and
// that error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

// all drains seq and fails the test on error.
func all[T any](is *is.I, seq iter.Seq2[T, error]) []T {
	is.Helper()
	out, err := collect(seq)
	is.NoErr(err) // reading the sequence
	return out
}

// versions returns the versions of events, in order.
func versions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Version
	}
	return out
}

// positions returns the global positions of events, in order.
func positions(events []eventstore.RecordedEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.Position
	}
	return out
}

// logPositions returns the positions of the whole global log, in order.
// The contract promises positions that strictly increase, not consecutive
// ones: a test that checks that nothing was skipped compares with these.
func (b *bundle) logPositions() []int64 {
	b.is.Helper()
	return positions(all(b.is, b.store.ReadAll(b.ctx, eventstore.ReadOptions{}, eventstore.Filter{})))
}

// increasing fails the test unless positions strictly increase from 1 on.
func increasing(t *testing.T, positions []int64) {
	t.Helper()
	var last int64
	for i, p := range positions {
		if p <= last {
			t.Fatalf("event %d has position %d, after %d", i, p, last)
		}
		last = p
	}
}

// streamsOf returns "stream@version" for each event, in order.
func streamsOf(events []eventstore.RecordedEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s@%d", e.StreamID, e.Version)
	}
	return out
}

// at returns the positions of the events of log at the given ordinals,
// counted from 1: at(log, 1, 3) is the positions of the first and the
// third event. Tests name the events they expect by their place in the
// log, since positions need not be consecutive; nil for no ordinal.
func at(log []int64, ordinals ...int64) []int64 {
	if len(ordinals) == 0 {
		return nil
	}
	out := make([]int64, len(ordinals))
	for i, n := range ordinals {
		out[i] = log[n-1]
	}
	return out
}
