package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

const backupKillEnv = "EVENTSTORE_BACKUP_KILL_CHILD" // "store dest", in the child

// TestBackup_Killed kills a process (this test binary) that is backing up
// a store, at a random moment, again and again: the destination either
// does not exist or is the whole store, never a partial or empty file
// that would open as a healthy store.
func TestBackup_Killed(t *testing.T) {
	if arg := os.Getenv(backupKillEnv); arg != "" {
		store, dest, _ := strings.Cut(arg, " ")
		b, err := sqlite.Open(store, &sqlite.Options{ReadOnly: true})
		if err == nil {
			err = b.Backup(context.Background(), dest)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	store := filepath.Join(dir, "live.db")
	b, err := sqlite.Open(store, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	data := []byte(`{"pad":"` + strings.Repeat("x", 800) + `"}`)
	for i := range 10 { // a megabyte or two: the copy takes a while: the copy takes a while
		batch := make([]eventstore.Event, 200)
		for j := range batch {
			batch[j] = eventstore.Event{Type: "E", Data: data}
		}
		_, err := s.Append(ctx, fmt.Sprintf("s-%d", i), eventstore.NoStream, batch...)
		is.NoErr(err)
	}
	is.NoErr(s.Close())
	const events = 10 * 200

	// The first backup runs to its end, which says how long one takes on
	// this machine; the others are killed at a random moment within that.
	var whole time.Duration
	complete := 0
	for round := range 5 {
		dest := filepath.Join(dir, fmt.Sprintf("backup-%d.db", round))
		cmd := exec.Command(os.Args[0], "-test.run=^TestBackup_Killed$")
		cmd.Env = append(os.Environ(), backupKillEnv+"="+store+" "+dest)
		cmd.Stderr = os.Stderr
		start := time.Now()
		is.NoErr(cmd.Start())
		if round == 0 {
			is.NoErr(cmd.Wait())
			whole = time.Since(start)
		} else {
			time.Sleep(rand.N(whole)) // a random moment, not a wait for anything
			cmd.Process.Kill()
			cmd.Wait()
		}
		if _, err := os.Stat(dest); errors.Is(err, os.ErrNotExist) {
			continue // killed before the copy was in place: nothing there
		}
		complete++
		cb, err := sqlite.Open(dest, &sqlite.Options{ReadOnly: true})
		is.NoErr(err)
		r, err := eventstore.New(cb, nil).Verify(ctx)
		is.NoErr(err)
		is.True(r.OK())
		is.Equal(r.Events, int64(events)) // the whole store
		is.NoErr(cb.Close())
	}
	is.True(complete >= 1) // the first, at least
	t.Logf("a backup takes %v here; %d of 5 completed", whole, complete)
}
