//go:build linux

package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/google/uuid"
)

// diskFullEnv names, in the child of TestDiskFull, the directory to mount
// a small tmpfs on.
const diskFullEnv = "EVENTSTORE_DISKFULL_CHILD"

// TestDiskFull fills a real small file system (a 16 MiB tmpfs, mounted in a
// mount namespace of a child process) with a store whose budget is bigger
// than the disk, from several appenders at once: the disk fills first,
// and every Append that does not fit fails with ErrStorageFull, the store
// reporting "storage.full". Nothing of a refused Append is stored: the
// store holds exactly the acknowledged events and verifies. A purge on the
// full disk succeeds or fails whole. Once space is freed on the disk,
// appends succeed again; after a reopen, everything acknowledged is still
// there.
func TestDiskFull(t *testing.T) {
	if dir := os.Getenv(diskFullEnv); dir != "" {
		if err := diskFullChild(dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDiskFull$", "-test.v")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+t.TempDir())
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	} else { // an unprivileged user gets a mount namespace in a user namespace
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}
	}
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
}

func diskFullChild(dir string) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("private mounts: %w", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		return fmt.Errorf("mount tmpfs: %w", err)
	}
	defer syscall.Unmount(dir, 0)
	// Room for the store to come back to, once it is freed.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 4<<20), 0o644); err != nil {
		return err
	}
	path := filepath.Join(dir, "events.db")
	ctx := context.Background()
	b, err := sqlite.Open(path, &sqlite.Options{MaxBytes: 64 << 20}) // the disk fills first
	if err != nil {
		return err
	}
	var rec recorder
	s := eventstore.New(b, &eventstore.Options{Hooks: rec.hooks()})

	// Four appenders, so that group commits meet the full disk too; each
	// keeps the IDs of the events it was told are stored.
	var (
		mu    sync.Mutex
		acked = map[string]string{} // event ID: stream
		wg    sync.WaitGroup
		errs  = make(chan error, 4)
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				e := eventstore.Event{Type: "Filled", Data: bytes.Repeat([]byte{'a' + byte(w)}, 4000+1000*w)}
				e.ID = uuid.Must(uuid.NewV7())
				stream := fmt.Sprintf("w%d-%d", w, i%5)
				_, err := s.Append(ctx, stream, eventstore.Any, e, eventstore.Event{Type: "Second"})
				if errors.Is(err, eventstore.ErrStorageFull) {
					errs <- nil
					return
				}
				if err != nil {
					errs <- fmt.Errorf("appender %d: %w, want ErrStorageFull", w, err)
					return
				}
				mu.Lock()
				acked[e.ID.String()] = stream
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	if len(rec.names()) == 0 || rec.names()[0] != "storage.full" {
		return fmt.Errorf("happenings %v, want storage.full first", rec.names())
	}
	fmt.Printf("the disk took %d appends; the store takes %d bytes\n", len(acked), onDisk(path))

	// Exactly the acknowledged appends, whole.
	check := func(s *eventstore.Store, extra int) error {
		n := 0
		for e, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
			if err != nil {
				return err
			}
			if _, ok := acked[e.ID.String()]; e.Type == "Filled" && !ok {
				return fmt.Errorf("event %v at %d was stored but never acknowledged", e.ID, e.Position)
			}
			n++
		}
		if want := 2*len(acked) + extra; n != want {
			return fmt.Errorf("%d events stored, want %d (two per acknowledged append)", n, want)
		}
		r, err := s.Verify(ctx)
		if err != nil {
			return err
		}
		if !r.OK() {
			return fmt.Errorf("verify: %v", r.Problems)
		}
		return nil
	}
	if err := check(s, 0); err != nil {
		return err
	}

	// On the full disk, a purge either frees the room of its events or
	// fails whole, with ErrStorageFull: it too must write to the WAL,
	// which SQLite cannot start again while it cannot copy it into the
	// database file.
	_, err = s.PurgeStream(ctx, "w0-0")
	if err != nil && !errors.Is(err, eventstore.ErrStorageFull) {
		return fmt.Errorf("purge on the full disk: %w, want ErrStorageFull or success", err)
	}
	if err == nil { // the purged events are no longer owed
		for id, stream := range acked {
			if stream == "w0-0" {
				delete(acked, id)
			}
		}
	}

	// Space freed on the disk: the store works again.
	if err := os.Remove(filler); err != nil {
		return err
	}
	for i := range 50 {
		if _, err := s.Append(ctx, "after-1", eventstore.Any, eventstore.Event{Type: "After", Data: make([]byte, 1000)}); err != nil {
			return fmt.Errorf("append %d after space was freed: %w", i, err)
		}
	}
	if err := check(s, 50); err != nil {
		return err
	}
	if err := s.Close(); err != nil {
		return err
	}
	// At the disk's edge an Append that fits may follow one that did not
	// (a smaller one, or one after a checkpoint let the WAL start again):
	// the store then says storage.ok, and storage.full again at the next
	// that does not fit. The happenings alternate, full first, and end
	// with storage.ok once space was freed.
	got := rec.names()
	for i, name := range got {
		if want := []string{"storage.full", "storage.ok"}[i%2]; name != want || len(got)%2 != 0 {
			return fmt.Errorf("happenings %v, want storage.full and storage.ok in turn, ending with storage.ok", got)
		}
	}
	if len(got) == 0 {
		return errors.New("no happenings, want storage.full and storage.ok")
	}
	b, err = sqlite.Open(path, nil)
	if err != nil {
		return err
	}
	s = eventstore.New(b, nil)
	defer s.Close()
	return check(s, 50)
}
