package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// bin is the eventstore command, built once for the tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "eventstore-cli-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "eventstore")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the command: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the command and returns its stdout, stderr and exit status.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// fixture writes a small store and returns its path.
func fixture(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	defer s.Close()
	ctx := context.Background()
	for i := range 3 {
		if _, err := s.Append(ctx, fmt.Sprintf("order-%d", i), eventstore.Any,
			eventstore.Event{Type: "Placed", Data: fmt.Appendf(nil, `{"total":%d}`, 10*i)},
			eventstore.Event{Type: "Paid", Metadata: []byte(`{"by":"ann"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "user-1", eventstore.Any, eventstore.Event{Type: "Joined", Data: []byte{0xff, 0}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, "order-1", 1, []byte(`{"paid":true}`), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.SaveCheckpoint(ctx, "projector", 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	return path
}

func hash(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

func expect(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func TestReadCommands(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	before := hash(t, path)
	cases := []struct {
		args  []string
		wants []string
	}{
		{[]string{"streams", path}, []string{"order-0", "order-2", "user-1", "4 streams"}},
		{[]string{"streams", "-category", "order", "-limit", "2", path}, []string{"order-0", "order-1", "2 streams"}},
		{[]string{"read", path, "order-1"}, []string{"POSITION", "Placed", `{"total":10}`, "Paid"}},
		{[]string{"read", "-backward", "-limit", "1", path, "order-1"}, []string{"Paid", "1 "}},
		{[]string{"read", "-json", path, "order-2"}, []string{`"stream":"order-2"`, `"data":{"total":20}`, `"metadata":{"by":"ann"}`}},
		{[]string{"stats", path}, []string{"events                     7", "streams                    4", "snapshots                  1", "schema version"}},
		{[]string{"verify", path}, []string{"integrity: ok", "events: 7", "ok"}},
		{[]string{"snapshots", path, "order-1"}, []string{"1 snapshots", "13"}},
		{[]string{"consumers", path}, []string{"projector", "4", "3"}},
	}
	for _, c := range cases {
		out, errOut, code := run(t, "", c.args...)
		if code != 0 {
			t.Errorf("%v: exit %d: %s", c.args, code, errOut)
		}
		expect(t, strings.Join(c.args[:1], " "), out, c.wants...)
	}
	if hash(t, path) != before {
		t.Error("a read command changed the store file")
	}
}

func TestErrorsAndHelp(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		want string // in stderr (or stdout for help)
	}{
		{nil, 2, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"read", "-h"}, 0, "-backward"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"read", path}, 2, "usage: eventstore read"},
		{[]string{"read", path, "nobody-1"}, 1, "stream not found"},
		{[]string{"read", path, "bad\x01id"}, 1, "invalid argument"},
		{[]string{"streams", filepath.Join(t.TempDir(), "missing.db")}, 1, "no such file"},
		{[]string{"verify", garbage}, 1, "not a database"},
		{[]string{"backup", path, path}, 1, "already exists"},
	}
	for _, c := range cases {
		out, errOut, code := run(t, "", c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s%s", c.args, code, c.code, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "missing.db")); !os.IsNotExist(err) {
		t.Error("a read command created a file")
	}
}

func TestBackupExportImport(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	dir := t.TempDir()
	out, errOut, code := run(t, "", "backup", path, filepath.Join(dir, "backup.db"))
	if code != 0 {
		t.Fatalf("backup: %s", errOut)
	}
	expect(t, "backup", out, "backed up")
	out, _, _ = run(t, "", "verify", filepath.Join(dir, "backup.db"))
	expect(t, "verify backup", out, "events: 7", "ok")

	export := filepath.Join(dir, "events.jsonl")
	if _, errOut, code := run(t, "", "export", "-o", export, path); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["stream"] != "order-0" {
		t.Fatalf("first line %s: %v", lines[0], err)
	}

	// Import, and import again as after an interruption: nothing doubles.
	copyPath := filepath.Join(dir, "copy.db")
	_, errOut, code = run(t, "", "import", "-i", export, "-batch", "2", copyPath)
	if code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	expect(t, "import", errOut, "imported 7 events (0 already there)")
	_, errOut, _ = run(t, string(data), "import", "-batch", "2", copyPath) // from stdin this time
	expect(t, "second import", errOut, "imported 0 events (7 already there)")
	a, _, _ := run(t, "", "read", "-json", path, "user-1")
	b, _, _ := run(t, "", "read", "-json", copyPath, "user-1")
	strip := func(s string) string { // positions and times are the copy's own
		var m map[string]any
		json.Unmarshal([]byte(s), &m)
		delete(m, "recorded_at")
		delete(m, "position")
		out, _ := json.Marshal(m)
		return string(out)
	}
	if strip(a) != strip(b) {
		t.Errorf("the copy differs:\n%s\n%s", a, b)
	}
}

// TestTail follows a store while another process (this test) appends.
func TestTail(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "tail", "-json", "-category", "order", path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	// It says when it follows; appends after that must show.
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(line, "following") {
		t.Fatalf("tail: %q %v", line, err)
	}

	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	defer s.Close()
	if _, err := s.Append(ctx, "user-9", eventstore.Any, eventstore.Event{Type: "Ignored"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "order-9", eventstore.Any, eventstore.Event{Type: "Live", Data: []byte(`{"new":true}`)}); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("tail printed nothing: %v", sc.Err())
	}
	expect(t, "tail", sc.Text(), `"stream":"order-9"`, `"type":"Live"`, `"position":9`)
}
