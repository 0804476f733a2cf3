package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestImport_TerminalStdin runs import with a terminal as its input and
// no -i: it says what it expects, at once, exits 2 and creates no file.
func TestImport_TerminalStdin(t *testing.T) {
	t.Parallel()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	path := filepath.Join(t.TempDir(), "new.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "import", path)
	cmd.Stdin = tty
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatal("import waited for input from the terminal")
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want 2: %s", err, errOut.String())
	}
	expect(t, "import", errOut.String(), "no input", "-i FILE", "eventstore export OLD.db | eventstore import "+path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Error("import created the file")
	}

	// With -i, a terminal on stdin does not matter.
	export := filepath.Join(t.TempDir(), "export.jsonl")
	if _, errOut, code := run(t, "", "export", "-o", export, fixture(t)); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	cmd = exec.CommandContext(ctx, bin, "import", path, "-i", export)
	cmd.Stdin = tty
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import -i: %v: %s", err, out)
	}
}

// TestProgress_Terminal exports with stderr on a terminal: a bar with
// the count, and the rate and time left where the terminal is wide
// enough, redrawn in place on one line that never outgrows the terminal,
// then cleared for the summary, the only line left.
func TestProgress_Terminal(t *testing.T) {
	t.Parallel()
	src, _ := manyEvents(t, 3000)
	for _, c := range []struct {
		width int
		wants []string
	}{
		{100, []string{"exporting", "/3000", "events/s", "s:"}}, // [elapsed:left]
		{40, []string{"exporting", "/3000"}},
	} {
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer ptmx.Close()
		if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: uint16(c.width)}); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "export", "-o", filepath.Join(t.TempDir(), "out.jsonl"), src)
		cmd.Stderr = tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close() // the command has its own
		var out bytes.Buffer
		copied := make(chan struct{})
		go func() { io.Copy(&out, ptmx); close(copied) }() // ends with EIO when the command exits
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
		<-copied
		s := strings.ReplaceAll(out.String(), "\r\n", "\n") // the terminal's newline
		expect(t, fmt.Sprintf("progress on %d columns", c.width), s, append(c.wants, "exported 3000 events")...)
		if n := strings.Count(s, "\n"); n != 1 {
			t.Errorf("%d columns: %d lines, want the summary only:\n%q", c.width, n, s)
		}
		for _, seg := range strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' }) {
			if n := len([]rune(strings.TrimRight(seg, " "))); n > c.width {
				t.Errorf("a line of %d columns on a terminal of %d: %q", n, c.width, seg)
			}
		}
	}
}
