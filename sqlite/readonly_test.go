//go:build linux

package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/matryer/is"
)

// The child side of the read-only tests: this test binary, run again.
const (
	readOnlyEnv  = "EVENTSTORE_READONLY_CHILD" // the store file to read
	readOnlyWant = "EVENTSTORE_READONLY_WANT"  // how many events it holds
	readOnlyRO   = "EVENTSTORE_READONLY_MOUNT" // mount the store's directory read-only first
)

// TestReadOnly_Unprivileged reads a store as a user who can read the file
// but not write its directory (nobody, run as a child process when the
// test runs as root): Open with ReadOnly reads every event, refuses
// writes with ErrReadOnly, and leaves no -wal or -shm file. It also reads
// while a writer has the file open, through the writer's -wal and -shm
// files it may not write, and sees the writer's commits.
func TestReadOnly_Unprivileged(t *testing.T) {
	if readOnlyChild() {
		return
	}
	t.Parallel()
	is := is.New(t)
	dir, path := readOnlyStore(t, 5)
	bin := shareBinary(t, dir)
	is.NoErr(os.Chmod(filepath.Dir(path), 0o555))
	t.Cleanup(func() { os.Chmod(filepath.Dir(path), 0o755) })
	child := func(want int) error {
		run := func() error {
			cmd := exec.Command(bin, "-test.run=^TestReadOnly_Unprivileged$")
			cmd.Env = append(os.Environ(), readOnlyEnv+"="+path, readOnlyWant+"="+strconv.Itoa(want))
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			return cmd.Run()
		}
		err := run()
		// A process another test forked while the copy of the binary was
		// open for writing holds it open until it execs: try again.
		for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 50; try++ {
			time.Sleep(10 * time.Millisecond)
			err = run()
		}
		return err
	}
	is.NoErr(child(5))
	is.Equal(names(t, filepath.Dir(path)), []string{"events.db"}) // nothing created

	// While a writer has the file open.
	is.NoErr(os.Chmod(filepath.Dir(path), 0o755))
	w, err := sqlite.Open(path, nil)
	is.NoErr(err)
	writer := eventstore.New(w, nil)
	defer writer.Close()
	_, err = writer.Append(context.Background(), "more-1", eventstore.Any, eventstore.Event{Type: "E"})
	is.NoErr(err)
	is.NoErr(os.Chmod(filepath.Dir(path), 0o555))
	is.NoErr(child(6))

	// A -wal without its -shm (a copy taken while a writer ran), in a
	// directory the reader cannot create the -shm in: the error says so.
	copied := filepath.Join(dir, "copy", "events.db")
	is.NoErr(os.Mkdir(filepath.Dir(copied), 0o755))
	for _, suffix := range []string{"", "-wal"} {
		data, err := os.ReadFile(path + suffix)
		is.NoErr(err)
		is.NoErr(os.WriteFile(copied+suffix, data, 0o644))
	}
	is.NoErr(os.Chmod(filepath.Dir(copied), 0o555))
	t.Cleanup(func() { os.Chmod(filepath.Dir(copied), 0o755) })
	path = copied
	is.NoErr(child(-1))
	is.Equal(names(t, filepath.Dir(copied)), []string{"events.db", "events.db-wal"})
}

// TestReadOnly_Mount reads a store on a read-only mount (the store's
// directory bind-mounted read-only onto itself, in a mount namespace of a
// child process): Open with ReadOnly reads every event and creates
// nothing.
func TestReadOnly_Mount(t *testing.T) {
	if readOnlyChild() {
		return
	}
	t.Parallel()
	is := is.New(t)
	_, path := readOnlyStore(t, 3)
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadOnly_Mount$")
	cmd.Env = append(os.Environ(), readOnlyEnv+"="+path, readOnlyWant+"=3", readOnlyRO+"=1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	} else { // an unprivileged user gets a mount namespace in a user namespace
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}
	}
	is.NoErr(cmd.Run())
	is.Equal(names(t, filepath.Dir(path)), []string{"events.db"})
}

// readOnlyChild runs the child side when this process is one, and says
// whether it was.
func readOnlyChild() bool {
	path := os.Getenv(readOnlyEnv)
	if path == "" {
		return false
	}
	if err := readOnlyRead(path); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	return true
}

func readOnlyRead(path string) error {
	if os.Getenv(readOnlyRO) != "" {
		dir := filepath.Dir(path)
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("private mounts: %w", err)
		}
		if err := syscall.Mount(dir, dir, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount: %w", err)
		}
		if err := syscall.Mount("", dir, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("remount read-only: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			return fmt.Errorf("the mount is not read-only: writing gave %v", err)
		}
	}
	want, _ := strconv.ParseInt(os.Getenv(readOnlyWant), 10, 64)
	ctx := context.Background()
	b, err := sqlite.Open(path, &sqlite.Options{ReadOnly: true})
	if want < 0 { // expect a refusal that says why
		if err == nil || !strings.Contains(err.Error(), "no -shm file") {
			return fmt.Errorf("open: %v, want an error about the missing -shm file", err)
		}
		fmt.Fprintln(os.Stderr, "child, as expected:", err)
		return nil
	}
	if err != nil {
		return err
	}
	s := eventstore.New(b, nil)
	defer s.Close()
	var n int64
	for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			return err
		}
		n++
	}
	if n != want {
		return fmt.Errorf("read %d events, want %d", n, want)
	}
	r, err := s.Verify(ctx)
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("verify: %v", r.Problems)
	}
	if _, err := b.FileStats(ctx); err != nil {
		return err
	}
	if _, err := s.Append(ctx, "x-1", eventstore.Any, eventstore.Event{Type: "E"}); !errors.Is(err, sqlite.ErrReadOnly) {
		return fmt.Errorf("append: %v, want ErrReadOnly", err)
	}
	return nil
}

// readOnlyStore writes a store of n events in a directory of its own that
// every user may read, and closes it.
func readOnlyStore(t *testing.T, n int) (dir, path string) {
	t.Helper()
	dir = t.TempDir()
	// t.TempDir makes its directories 0700: open them to other users.
	for d := dir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path = filepath.Join(dir, "store", "events.db")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	for i := range n {
		if _, err := s.Append(context.Background(), fmt.Sprintf("s-%d", i%2), eventstore.Any, eventstore.Event{Type: "E"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, filepath.Dir(path)); !slices.Equal(got, []string{"events.db"}) {
		t.Fatalf("a closed store left %v", got)
	}
	return dir, path
}

// shareBinary copies this test binary where another user may run it.
func shareBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "sqlite.test")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}
