package sqlite_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

const claimEnv = "EVENTSTORE_CLAIM_CHILD" // path of the store, in the child

// TestClaim_KillNine: a consumer and a forwarder run in a child process
// (this test binary); while it lives, this process cannot start them; once
// it is killed with SIGKILL, they start here at once, though their claims,
// with the default lease, would not lapse for seconds.
func TestClaim_KillNine(t *testing.T) {
	if path := os.Getenv(claimEnv); path != "" {
		claimChild(path)
		return
	}
	t.Parallel()
	is := is.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := sqlite.Open(path, nil)
	is.NoErr(err)
	store := eventstore.New(b, nil)
	defer store.Close()
	_, err = store.Append(ctx, "meter-1", eventstore.Any, eventstore.Event{Type: "Ticked"})
	is.NoErr(err)

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestClaim_KillNine$")
	cmd.Env = append(os.Environ(), claimEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	is.NoErr(err)
	is.NoErr(cmd.Start())
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "READY" {
	}

	handled := make(chan int64, 10)
	opts := eventstore.ConsumerOptions{Name: "projector", Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
		handled <- e.Position
		return nil
	}}
	err = store.Consume(ctx, opts)
	is.True(errors.Is(err, eventstore.ErrConsumerRunning)) // it runs in the child
	sink := nopSink(make(chan int64, 10))
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	is.NoErr(err)
	err = fwd.Run(ctx)
	is.True(errors.Is(err, eventstore.ErrConsumerRunning))

	is.NoErr(cmd.Process.Kill()) // SIGKILL: the child releases nothing
	cmd.Wait()
	consumed := make(chan error, 1)
	go func() { consumed <- store.Consume(ctx, opts) }()
	forwarded := make(chan error, 1)
	go func() { forwarded <- fwd.Run(ctx) }()
	_, err = store.Append(ctx, "meter-1", eventstore.Any, eventstore.Event{Type: "Ticked"})
	is.NoErr(err)
	for _, ch := range []chan int64{handled, sink} {
		select {
		case p := <-ch:
			is.Equal(p, int64(2)) // resumed after the child's checkpoint
		case err := <-consumed:
			t.Fatalf("consume after the kill: %v", err)
		case err := <-forwarded:
			t.Fatalf("forward after the kill: %v", err)
		}
	}
	cancel()
	is.True(errors.Is(<-consumed, context.Canceled))
	is.True(errors.Is(<-forwarded, context.Canceled))
}

// claimChild runs the consumer and the forwarder, says READY once both
// have passed the first event, and waits to be killed.
func claimChild(path string) {
	b, err := sqlite.Open(path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	store := eventstore.New(b, nil)
	ctx := context.Background()
	handled := make(chan int64, 10)
	go func() {
		err := store.Consume(ctx, eventstore.ConsumerOptions{Name: "projector", Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
			handled <- e.Position
			return nil
		}})
		fmt.Fprintln(os.Stderr, "child consume:", err)
		os.Exit(2)
	}()
	sink := nopSink(make(chan int64, 10))
	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	go func() {
		err := fwd.Run(ctx)
		fmt.Fprintln(os.Stderr, "child forward:", err)
		os.Exit(2)
	}()
	<-handled
	<-sink
	// The checkpoints are saved once the handler and the sink return:
	// wait for both, so the parent resumes after event 1.
	for {
		infos, err := store.Consumers(ctx)
		if err == nil && len(infos) == 2 && infos[0].Position == 1 && infos[1].Position == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("READY")
	select {}
}
