package sqlite_test

import (
	"context"
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

const newFileEnv = "EVENTSTORE_NEWFILE_CHILD"

// TestTwoProcesses_OpenNewFile starts processes (this test binary) that
// open one brand-new file at the same moment: every one succeeds, with the
// schema applied once, and appends.
func TestTwoProcesses_OpenNewFile(t *testing.T) {
	if path := os.Getenv(newFileEnv); path != "" {
		// Start together: wait for the parent's go file (a start gun, not
		// a proof of anything).
		for {
			if _, err := os.Stat(path + ".go"); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		b, err := sqlite.Open(path, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		s := eventstore.New(b, nil)
		defer s.Close()
		if _, err := s.Append(context.Background(), "s-1", eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	t.Parallel()
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			is := is.New(t)
			path := filepath.Join(t.TempDir(), "new.db")
			const n = 6
			var cmds []*exec.Cmd
			for range n {
				cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcesses_OpenNewFile$")
				cmd.Env = append(os.Environ(), newFileEnv+"="+path)
				cmd.Stderr = os.Stderr
				is.NoErr(cmd.Start())
				cmds = append(cmds, cmd)
			}
			is.NoErr(os.WriteFile(path+".go", nil, 0o644))
			for i, cmd := range cmds {
				if err := cmd.Wait(); err != nil {
					t.Errorf("process %d: %v", i, err)
				}
			}
			b, err := sqlite.Open(path, &sqlite.Options{ReadOnly: true})
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			v, err := s.StreamVersion(context.Background(), "s-1")
			is.NoErr(err)
			is.Equal(v, int64(n-1)) // every process appended once
		})
	}
}
