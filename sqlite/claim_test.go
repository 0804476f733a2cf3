package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// nopSink accepts everything and reports each batch's last position.
type nopSink chan int64

func (s nopSink) Send(ctx context.Context, events []eventstore.RecordedEvent) (int, error) {
	select {
	case s <- events[len(events)-1].Position:
	default:
	}
	return len(events), nil
}

// TestClaim_TwoBackendsOneFile: two backends on one file, as two processes
// would have them: while a consumer or a forwarder runs on one, the other
// cannot start it; once it stops, the other can.
func TestClaim_TwoBackendsOneFile(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "events.db")
	stores := make([]*eventstore.Store, 2)
	for i := range stores {
		b, err := sqlite.Open(path, nil)
		is.NoErr(err)
		stores[i] = eventstore.New(b, nil)
		defer stores[i].Close()
	}
	_, err := stores[0].Append(ctx, "meter-1", eventstore.Any, eventstore.Event{Type: "Ticked"})
	is.NoErr(err)

	handled := make(chan int64, 10)
	opts := eventstore.ConsumerOptions{Name: "projector", Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
		handled <- e.Position
		return nil
	}}
	cctx, stopFirst := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { first <- stores[0].Consume(cctx, opts) }()
	is.Equal(<-handled, int64(1))
	sink := nopSink(make(chan int64, 10))
	fwd, err := stores[0].NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	is.NoErr(err)
	fctx, stopFwd := context.WithCancel(ctx)
	fwdDone := make(chan error, 1)
	go func() { fwdDone <- fwd.Run(fctx) }()
	is.Equal(<-sink, int64(1))

	err = stores[1].Consume(ctx, opts)
	is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // the consumer runs on the other backend
	fwd2, err := stores[1].NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	is.NoErr(err)
	err = fwd2.Run(ctx)
	is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // so does the forwarder

	stopFirst()
	is.True(errors.Is(<-first, context.Canceled))
	stopFwd()
	is.True(errors.Is(<-fwdDone, context.Canceled))
	second := make(chan error, 1)
	go func() { second <- stores[1].Consume(ctx, opts) }()
	go fwd2.Run(ctx)
	_, err = stores[0].Append(ctx, "meter-1", eventstore.Any, eventstore.Event{Type: "Ticked"})
	is.NoErr(err)
	is.Equal(<-handled, int64(2)) // from its checkpoint, on the other backend
	is.Equal(<-sink, int64(2))
	cancel()
	is.True(errors.Is(<-second, context.Canceled))
}

// TestClaim_ClosedHolder: a backend closed while it held a claim, as a
// process that died, leaves a claim that another takes over at once on
// Linux, and after its expiry elsewhere; while it is open, its claim holds,
// though it opened the file through a symbolic link.
//
// Not parallel: a test that starts a process forks this one, and until the
// child execs, it shares every open file, keeping the closed backend's
// lock alive for that moment.
func TestClaim_ClosedHolder(t *testing.T) {
	is := is.New(t)
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "events.db")
	b, err := sqlite.Open(path, nil)
	is.NoErr(err)
	// The other reaches the file by another name.
	link := filepath.Join(dir, "link.db")
	is.NoErr(os.Symlink(path, link))
	gone, err := sqlite.Open(link, nil)
	is.NoErr(err)
	defer b.Close()
	now := time.Now()
	is.NoErr(gone.Claim(ctx, "projector", "gone", now, now.Add(time.Hour)))
	err = b.Claim(ctx, "projector", "next", now, now.Add(time.Hour))
	is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // held while its backend is open
	is.NoErr(gone.Close())
	err = b.Claim(ctx, "projector", "next", now, now.Add(time.Hour))
	if runtime.GOOS == "linux" {
		is.NoErr(err) // its holder is gone
	} else {
		is.True(errors.Is(err, eventstore.ErrConsumerRunning))
		is.NoErr(b.Claim(ctx, "projector", "next", now.Add(time.Hour), now.Add(2*time.Hour))) // lapsed
	}
}
