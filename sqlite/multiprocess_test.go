package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

const multiEnv = "EVENTSTORE_MULTI_CHILD"

// TestTwoProcesses runs a child process (this test binary) and the test
// itself appending to the same stream of the same file at once, each with
// the optimistic-concurrency retry loop: no acknowledged append is lost or
// doubled, and versions stay contiguous.
func TestTwoProcesses(t *testing.T) {
	if path := os.Getenv(multiEnv); path != "" {
		if err := appendMany(path, "child", 150); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	t.Parallel()
	is := is.New(t)
	path := filepath.Join(t.TempDir(), "shared.db")
	b, err := sqlite.Open(path, nil) // create it before the child opens it
	is.NoErr(err)
	is.NoErr(b.Close())

	cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses$")
	cmd.Env = append(os.Environ(), multiEnv+"="+path)
	cmd.Stderr = os.Stderr
	is.NoErr(cmd.Start())
	parentErr := appendMany(path, "parent", 150)
	is.NoErr(cmd.Wait())
	is.NoErr(parentErr)

	b, err = sqlite.Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	counts := map[string]int{}
	v := int64(0)
	for e, err := range s.ReadStream(context.Background(), "shared-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		is.Equal(e.Version, v)
		v++
		counts[e.Type]++
	}
	is.Equal(counts, map[string]int{"child": 150, "parent": 150})
}

// appendMany appends n events of type who, one by one, retrying each on a
// version conflict.
func appendMany(path, who string, n int) error {
	b, err := sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	s := eventstore.New(b, nil)
	defer s.Close()
	ctx := context.Background()
	for i := 0; i < n; {
		v, err := s.StreamVersion(ctx, "shared-1")
		if err != nil {
			return err
		}
		_, err = s.Append(ctx, "shared-1", eventstore.Exact(v), eventstore.Event{Type: who})
		switch {
		case err == nil:
			i++
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			return err
		}
	}
	return nil
}
