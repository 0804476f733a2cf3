package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/memory"
	"github.com/matryer/is"
)

// recorder records what hooks see.
type recorder struct {
	mu   sync.Mutex
	ops  []string // "name stream events err"
	seen []string // happening names
}

func (r *recorder) hooks() eventstore.Hooks {
	return eventstore.Hooks{
		Start: func(ctx context.Context, op eventstore.Op) func(eventstore.Outcome) {
			return func(o eventstore.Outcome) {
				r.mu.Lock()
				defer r.mu.Unlock()
				status := "ok"
				if o.Err != nil {
					status = "err"
				}
				if o.Duration <= 0 {
					status = "no-duration"
				}
				r.ops = append(r.ops, strings.Join([]string{op.Name, op.Stream, itoa(o.Events), status}, " "))
			}
		},
		Event: func(ctx context.Context, h eventstore.Happening) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.seen = append(r.seen, h.Name)
		},
	}
}

func (r *recorder) has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s == name {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

type failingSink struct{ fail bool }

func (s *failingSink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	if s.fail {
		s.fail = false
		return 0, errors.New("down")
	}
	return len(events), nil
}

func TestHooksAndStats(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	rec := &recorder{}
	store := eventstore.New(memory.New(), &eventstore.Options{Hooks: rec.hooks()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	_, err := store.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "E"}, eventstore.Event{Type: "E"})
	is.NoErr(err)
	_, err = store.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.True(errors.Is(err, eventstore.ErrWrongExpectedVersion))
	for range store.ReadStream(ctx, "a-1", eventstore.ReadOptions{}) {
	}
	is.NoErr(store.SaveSnapshot(ctx, "a-1", 1, []byte(`{}`), nil))

	// A subscriber that does not receive: it lags.
	sub, err := store.Subscribe(ctx, eventstore.SubscribeOptions{Buffer: 1})
	is.NoErr(err)
	// A consumer that fails once, parks a poison event, and checkpoints.
	_, err = store.Append(ctx, "b-1", eventstore.Any, eventstore.Event{Type: "Poison"})
	is.NoErr(err)
	done := make(chan error, 1)
	go func() {
		done <- store.Consume(ctx, eventstore.ConsumerOptions{
			Name: "c", MinBackoff: time.Millisecond, ParkAfter: 2,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if e.Type == "Poison" {
					return errors.New("bad")
				}
				return nil
			},
		})
	}()
	f, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "out", Sink: &failingSink{fail: true}, MinBackoff: time.Millisecond})
	is.NoErr(err)
	go f.Run(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for !(rec.has("consumer.parked") && rec.has("outbox.sent") && rec.has("subscription.lagging")) {
		if time.Now().After(deadline) {
			t.Fatalf("seen %v", rec.seen)
		}
		time.Sleep(time.Millisecond)
	}
	sub.Close()
	cancel()
	<-done
	is.NoErr(store.Close())

	rec.mu.Lock()
	defer rec.mu.Unlock()
	is.Equal(rec.ops[:4], []string{"append a-1 2 ok", "append a-1 1 err", "read_stream a-1 2 ok", "save_snapshot a-1 0 ok"})
	for _, want := range []string{"store.opened", "subscription.created", "subscription.lagging", "subscription.closed",
		"consumer.failed", "consumer.parked", "consumer.checkpoint", "snapshot.saved", "outbox.failed", "outbox.sent", "store.closed"} {
		found := false
		for _, s := range rec.seen {
			found = found || s == want
		}
		if !found {
			t.Errorf("no %s in %v", want, rec.seen)
		}
	}
	st := store.Stats()
	is.Equal(st.Appends, uint64(2))
	is.Equal(st.EventsAppended, uint64(3))
	is.Equal(st.AppendErrors, uint64(1))
	is.Equal(st.Conflicts, uint64(1))
	is.True(st.Reads >= 1 && st.EventsRead >= 2)
	is.Equal(st.SnapshotsSaved, uint64(1))
	is.True(st.Subscribed >= 3) // ours, the consumer's, the forwarder's
	is.Equal(st.Subscriptions, int64(0))
	is.True(st.Lagging >= 1)
	is.Equal(st.HandlerErrors, uint64(2))
	is.Equal(st.Parked, uint64(1))
	is.True(st.Checkpoints >= 2)
	is.Equal(st.OutboxSent, uint64(3))
	is.Equal(st.OutboxFailures, uint64(1))
}

func TestLogHooks(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := eventstore.New(memory.New(), &eventstore.Options{Hooks: eventstore.LogHooks(logger)})
	ctx := context.Background()
	_, err := store.Append(ctx, "a-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	_, err = store.Append(ctx, "a-1", eventstore.NoStream, eventstore.Event{Type: "E"})
	is.True(err != nil)
	is.NoErr(store.Close())
	out := buf.String()
	for _, want := range []string{
		`level=INFO msg="eventstore: store.opened" category=system`,
		`level=DEBUG msg="eventstore: append" op=append`,
		`stream=a-1`,
		`level=WARN msg="eventstore: append"`,
		`error="eventstore: wrong expected version`,
		`msg="eventstore: store.closed"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// brokenReads is a backend whose stream reads fail: a real error, unlike
// a stream that does not exist.
type brokenReads struct{ *memory.Backend }

func (brokenReads) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		yield(eventstore.RecordedEvent{}, errors.New("disk on fire"))
	}
}

// A new aggregate's first command reads a stream that does not exist yet:
// that is an answer, not a failure, and must not be logged as a warning.
// A read that really fails still is.
func TestLogHooks_StreamNotFoundIsNotAWarning(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store := eventstore.New(memory.New(), &eventstore.Options{Hooks: eventstore.LogHooks(logger)})
	defer store.Close()
	ctx := context.Background()

	type event struct{ N int }
	registry := eventstore.NewRegistry()
	is.NoErr(eventstore.Register[event](registry, "Counted"))
	counters := eventstore.NewRepository(store, eventstore.Decider[int, int, event]{
		Decide: func(s, c int) ([]event, error) { return []event{{N: c}}, nil },
		Evolve: func(s int, e event) int { return s + e.N },
	}, eventstore.RegistryCodec[event](registry), nil)
	_, err := counters.Execute(ctx, "counter-1", 1)
	is.NoErr(err)
	_, err = store.StreamVersion(ctx, "nobody-1")
	is.NoErr(err)

	out := buf.String()
	if strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
		t.Errorf("a missing stream was logged as a failure:\n%s", out)
	}
	if !strings.Contains(out, `level=DEBUG msg="eventstore: read_stream" op=read_stream`) {
		t.Errorf("the read of the new stream was not logged:\n%s", out)
	}

	buf.Reset()
	broken := eventstore.New(brokenReads{memory.New()}, &eventstore.Options{Hooks: eventstore.LogHooks(logger)})
	defer broken.Close()
	for range broken.ReadStream(ctx, "counter-1", eventstore.ReadOptions{}) {
	}
	if out := buf.String(); !strings.Contains(out, `level=WARN msg="eventstore: read_stream"`) || !strings.Contains(out, "disk on fire") {
		t.Errorf("a failed read was not logged as a warning:\n%s", out)
	}
}

// reporting is a backend with happenings of its own (Reporter).
type reporting struct {
	*memory.Backend
	report func(context.Context, eventstore.Happening)
}

func (r *reporting) ReportTo(report func(context.Context, eventstore.Happening)) { r.report = report }

// A backend's own happenings reach the hooks through the Store that New
// made for it; LogHooks logs storage running low as a warning, with its
// bytes and budget.
func TestLogHooks_BackendHappenings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	b := &reporting{Backend: memory.New()}
	store := eventstore.New(b, &eventstore.Options{Hooks: eventstore.LogHooks(logger)})
	defer store.Close()
	if b.report == nil {
		t.Fatal("New did not call ReportTo")
	}
	b.report(context.Background(), eventstore.Happening{Category: eventstore.CategoryStorage, Name: "storage.low", Bytes: 950, Limit: 1000})
	want := `level=WARN msg="eventstore: storage.low" category=storage bytes=950 limit=1000`
	if out := buf.String(); !strings.Contains(out, want) {
		t.Errorf("log lacks %q:\n%s", want, out)
	}
}
