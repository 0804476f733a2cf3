package main_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// allCommands are the commands the tool has, as its help lists them.
var allCommands = []string{"streams", "read", "tail", "stats", "verify", "snapshots", "consumers",
	"parked", "reset-consumer", "backup", "vacuum", "retention", "prune", "export", "import", "serve"}

// TestHelp_EachCommand asks every command for -h: what it does, its
// arguments, its flags and an example, on stdout, exit 0; never the flag
// package's bare "Usage of".
func TestHelp_EachCommand(t *testing.T) {
	t.Parallel()
	top, _, code := run(t, "", "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, name := range allCommands {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := run(t, "", name, "-h")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			expect(t, name+" -h", out, "usage: eventstore "+name+" FILE", "\nArguments:\n  FILE", "\nExample:\n  eventstore "+name+" ")
			if strings.Contains(out+errOut, "Usage of") {
				t.Errorf("bare flag list:\n%s", out)
			}
			// The second paragraph says what it does, in a sentence.
			paras := strings.Split(out, "\n\n")
			if len(paras) < 2 || !regexp.MustCompile(`^[A-Z][^\n]+\.`).MatchString(paras[1]) {
				t.Errorf("no description:\n%s", out)
			}
			if name != "backup" && name != "vacuum" && !strings.Contains(out, "\nFlags:\n  -") {
				t.Errorf("no flags:\n%s", out)
			}
			if !strings.Contains(top, "\n  "+name+" ") {
				t.Errorf("--help does not list %s:\n%s", name, top)
			}
		})
	}
}

// TestVersion prints the version from the build info, as 'go version -m'
// reads it from the binary.
func TestVersion(t *testing.T) {
	t.Parallel()
	info, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	var version, revision string
	for _, line := range strings.Split(string(info), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			version = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			revision = strings.TrimPrefix(f[1], "vcs.revision=")
		}
	}
	if version == "" {
		t.Fatalf("go version -m shows no module version:\n%s", info)
	}
	for _, arg := range []string{"--version", "-version", "version"} {
		out, errOut, code := run(t, "", arg)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, errOut)
		}
		expect(t, arg, out, "eventstore "+version, "go1.")
		if revision != "" {
			expect(t, arg, out, "revision "+revision)
		}
	}
}

// TestFlagsAfterArguments gives flags after the file, and between the
// arguments; "--" ends the flags.
func TestFlagsAfterArguments(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	cases := []struct {
		args  []string
		wants []string
	}{
		{[]string{"streams", path, "-limit", "2"}, []string{"order-0", "order-1", "2 streams"}},
		{[]string{"streams", path, "-category", "order", "-limit", "1"}, []string{"order-0", "1 streams"}},
		{[]string{"read", path, "-backward", "order-1", "-limit", "1"}, []string{"Paid"}},
		{[]string{"read", "-json", path, "order-2", "-limit", "1"}, []string{`"stream":"order-2"`, `"type":"Placed"`}},
		{[]string{"stats", path, "-json"}, []string{`"events":7`}},
		{[]string{"snapshots", path, "order-1", "-json"}, []string{`"version":1`}},
	}
	for _, c := range cases {
		out, errOut, code := run(t, "", c.args...)
		if code != 0 {
			t.Errorf("%q: exit %d: %s", c.args, code, errOut)
			continue
		}
		expect(t, strings.Join(c.args, " "), out, c.wants...)
		if c.args[0] == "streams" && strings.Contains(out, "order-2") {
			t.Errorf("%q: -limit ignored:\n%s", c.args, out)
		}
	}
	// After --, "-limit" is a stream ID, not a flag.
	_, errOut, code := run(t, "", "read", path, "--", "-limit")
	if code != 1 || !strings.Contains(errOut, "stream not found") {
		t.Errorf("read -- -limit: exit %d: %s", code, errOut)
	}
}

// TestUsageErrors_Exit2 gives each command bad usage: exit status 2, a
// line that says what is wrong and the usage, and the file untouched.
func TestUsageErrors_Exit2(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	before := hash(t, path)
	newFile := filepath.Join(t.TempDir(), "new.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{}, "Commands:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"streams"}, "0 arguments, want 1"},
		{[]string{"streams", path, "extra"}, `unexpected argument "extra"`},
		{[]string{"streams", path, "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"streams", path, "-limit", "-3"}, "-limit -3: must be 0 or more"},
		{[]string{"streams", path, "-limit", "many"}, `invalid value "many"`},
		{[]string{"read", path}, "1 arguments, want 2"},
		{[]string{"read", path, "order-1", "-from", "-1"}, "-from -1"},
		{[]string{"read", path, "order-1", "-limit", "-1"}, "-limit -1"},
		{[]string{"tail", path, "-from", "-5"}, "-from -5: must be 0 or more"},
		{[]string{"tail", path, "-from", "3", "-all"}, "-from and -all"},
		{[]string{"stats", path, "-json=maybe"}, "invalid boolean value"},
		{[]string{"verify"}, "0 arguments"},
		{[]string{"snapshots", path}, "1 arguments, want 2"},
		{[]string{"consumers", path, path}, "unexpected argument"},
		{[]string{"parked", path}, "1 arguments, want 2"},
		{[]string{"parked", path, "projector", "-retry", "0"}, "-retry 0"},
		{[]string{"parked", path, "projector", "-drop", "-4"}, "-drop -4"},
		{[]string{"parked", path, "projector", "-retry", "2", "-drop", "3"}, "-retry and -drop"},
		{[]string{"reset-consumer", path}, "1 arguments, want 2"},
		{[]string{"reset-consumer", path, "projector", "-from", "-1"}, "-from -1"},
		{[]string{"backup", path}, "1 arguments, want 2"},
		{[]string{"vacuum"}, "0 arguments"},
		{[]string{"retention"}, "0 arguments"},
		{[]string{"retention", path, "order-1", "extra"}, `unexpected argument "extra"`},
		{[]string{"retention", path, "order-1", "-category", "order"}, "both a stream"},
		{[]string{"retention", path, "order-1", "-max-age", "soon"}, `-max-age "soon"`},
		{[]string{"retention", path, "order-1", "-max-count", "-1"}, "-max-count -1"},
		{[]string{"retention", path, "order-1", "-clear", "-max-count", "1"}, "-clear and a setting flag"},
		{[]string{"retention", path, "-max-count", "1"}, "on a STREAM or a -category"},
		{[]string{"prune"}, "0 arguments"},
		{[]string{"prune", path, "-batch", "0"}, "-batch 0"},
		{[]string{"export", path, "-o"}, "flag needs an argument: -o"},
		{[]string{"import", newFile, "-batch", "0", "-i", path}, "-batch 0"},
		{[]string{"import", newFile, "-tx", "-1", "-i", path}, "-tx -1"},
	}
	for _, c := range cases {
		out, errOut, code := run(t, "", c.args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2:\n%s%s", c.args, code, out, errOut)
			continue
		}
		if !strings.Contains(errOut, c.want) {
			t.Errorf("%q: stderr lacks %q:\n%s", c.args, c.want, errOut)
		}
		if len(c.args) > 1 && !strings.Contains(errOut, "usage: eventstore "+c.args[0]+" ") {
			t.Errorf("%q: no usage line:\n%s", c.args, errOut)
		}
	}
	if hash(t, path) != before {
		t.Error("a usage error changed the store file")
	}
	if _, err := os.Stat(newFile); !os.IsNotExist(err) {
		t.Error("an import with bad flags created its file")
	}
}

// TestJSON_EachCommand parses the -json output of every command that has
// it: one object a line, with the values of the fixture.
func TestJSON_EachCommand(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	lines := func(args ...string) []map[string]any {
		t.Helper()
		out, errOut, code := run(t, "", append(args, "-json")...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", args, code, errOut)
		}
		var objs []map[string]any
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("%q: %q is not a JSON object: %v", args, line, err)
			}
			objs = append(objs, m)
		}
		return objs
	}
	stats := lines("stats", path)
	if len(stats) != 1 || stats[0]["events"] != 7.0 || stats[0]["streams"] != 4.0 || stats[0]["snapshots"] != 1.0 ||
		stats[0]["consumers"] != 1.0 || stats[0]["file"] != path {
		t.Errorf("stats: %v", stats)
	}
	verify := lines("verify", path)
	if len(verify) != 1 || verify[0]["ok"] != true || verify[0]["events"] != 7.0 ||
		fmt.Sprint(verify[0]["checked"]) != "[integrity log streams snapshots checkpoints]" ||
		fmt.Sprint(verify[0]["problems"]) != "[]" {
		t.Errorf("verify: %v", verify)
	}
	streams := lines("streams", path)
	if len(streams) != 4 || streams[1]["stream"] != "order-1" || streams[1]["version"] != 1.0 || streams[1]["events"] != 2.0 {
		t.Errorf("streams: %v", streams)
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(streams[0]["created_at"])); err != nil {
		t.Errorf("streams: created_at: %v", err)
	}
	snaps := lines("snapshots", path, "order-1")
	if len(snaps) != 1 || snaps[0]["stream"] != "order-1" || snaps[0]["version"] != 1.0 || snaps[0]["bytes"] != 13.0 {
		t.Errorf("snapshots: %v", snaps)
	}
	consumers := lines("consumers", path)
	if len(consumers) != 1 || consumers[0]["consumer"] != "projector" || consumers[0]["position"] != 4.0 ||
		consumers[0]["lag"] != 3.0 || consumers[0]["parked"] != 0.0 {
		t.Errorf("consumers: %v", consumers)
	}
	read := lines("read", path, "order-2")
	if len(read) != 2 || read[0]["type"] != "Placed" {
		t.Errorf("read: %v", read)
	}
	parkedPath := parkedFixture(t)
	parked := lines("parked", parkedPath, "careful")
	if len(parked) != 3 || parked[0]["position"] != 2.0 || parked[0]["stream"] != "order-0" ||
		parked[0]["attempts"] != 1.0 || parked[0]["error"] != "cannot pay" {
		t.Errorf("parked: %v", parked)
	}
}

// stampRE is a table's time: local, with the zone's offset.
var stampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d\d:\d\d$`)

// columns splits a table line at runs of two or more spaces, and returns
// where each cell starts.
func columns(line string) (starts []int, cells []string) {
	for _, loc := range regexp.MustCompile(`\S+( \S+)*`).FindAllStringIndex(line, -1) {
		starts = append(starts, utf8.RuneCountInString(line[:loc[0]])) // "…" is one column
		cells = append(cells, line[loc[0]:loc[1]])
	}
	return starts, cells
}

// aligned checks that every row of a table starts its cells where the
// header starts its columns (the last column may hold spaces), and that
// the cells of the time columns show the zone's offset.
func aligned(t *testing.T, what, table string, rows int, timeCols ...int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) < rows+1 {
		t.Fatalf("%s: %d lines, want a header and %d rows:\n%s", what, len(lines), rows, table)
	}
	head, _ := columns(lines[0])
	for _, line := range lines[1 : rows+1] {
		starts, cells := columns(line)
		if len(starts) < len(head) {
			t.Errorf("%s: %d cells, want %d: %q", what, len(starts), len(head), line)
			continue
		}
		for i := range head {
			if starts[i] != head[i] {
				t.Errorf("%s: column %d starts at %d, the header's at %d:\n%s", what, i, starts[i], head[i], table)
				return
			}
		}
		for _, c := range timeCols {
			if !stampRE.MatchString(cells[c]) {
				t.Errorf("%s: time %q has no time zone", what, cells[c])
			}
		}
	}
}

// TestTables_Align prints every table with cells of different widths:
// the columns align, and times show the time zone (+05:30 in Kolkata).
// tail, which prints as events come, aligns too.
func TestTables_Align(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openStore(t, path)
	ctx := context.Background()
	for _, stream := range []string{"a-1", "a-much-longer-stream-name-than-the-others-1", "bb-22"} {
		if _, err := s.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "T", Data: []byte(`{"n":1}`)},
			eventstore.Event{Type: "AMuchLongerTypeNameThanUsual", Data: []byte(`{ "spaced" : true }`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, "a-1", 1, []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	cp, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"p", "a-much-longer-consumer-name"} {
		if err := cp.SaveCheckpoint(ctx, key, 2, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cp.Close()
	kolkata := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TZ=Asia/Kolkata")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if !strings.Contains(string(out), "+05:30") && args[0] != "stats" {
			t.Errorf("%q: times not in the local zone:\n%s", args, out)
		}
		return string(out)
	}
	aligned(t, "streams", kolkata("streams", path), 3, 3, 4)
	aligned(t, "read", kolkata("read", path, "a-1"), 2, 3)
	aligned(t, "snapshots", kolkata("snapshots", path, "a-1"), 1, 1)
	aligned(t, "consumers", kolkata("consumers", path), 2, 4)
	aligned(t, "parked", kolkata("parked", parkedFixture(t), "careful"), 3, 4)
	stats := kolkata("stats", path)
	expect(t, "stats", stats, "+05:30")

	// tail prints as events come: its columns align all the same.
	tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(tctx, bin, "tail", path, "-all")
	cmd.Env = append(os.Environ(), "TZ=Asia/Kolkata")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	var table strings.Builder
	for i := 0; i < 7 && sc.Scan(); i++ { // the header and 6 events
		table.WriteString(sc.Text() + "\n")
	}
	aligned(t, "tail", table.String(), 6, 3)
	// A stream ID the store had when tail started fits; a longer type is
	// cut.
	expect(t, "tail", table.String(), "a-much-longer-stream-name-than-the-others-1 ", "AMuchLongerTypeNameThan… ")
}

// parkedFixture writes a store whose consumer "careful" parked the three
// Paid events of the fixture (positions 2, 4 and 6).
func parkedFixture(t *testing.T) string {
	t.Helper()
	path := fixture(t)
	s := openStore(t, path)
	runConsumer(t, s, "careful", 7, func(e eventstore.RecordedEvent) error {
		if e.Type == "Paid" {
			return errors.New("cannot pay")
		}
		return nil
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runConsumer runs a consumer that parks after one failure until it has
// passed position last, and stops it.
func runConsumer(t *testing.T, s *eventstore.Store, name string, last int64, handle func(eventstore.RecordedEvent) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	passed := make(chan struct{})
	go func() {
		done <- s.Consume(ctx, eventstore.ConsumerOptions{
			Name: name, ParkAfter: 1, MinBackoff: time.Millisecond,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				err := handle(e)
				if e.Position == last {
					close(passed)
				}
				return err
			},
		})
	}()
	select {
	case <-passed:
	case err := <-done:
		t.Fatalf("consumer stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not reach its last position")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

// holdConsumer runs a consumer on the store file until the test ends, and
// returns once it runs. It appends an event to the file.
func holdConsumer(t *testing.T, path, name string) {
	t.Helper()
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan error, 1)
	var once bool
	go func() {
		done <- s.Consume(ctx, eventstore.ConsumerOptions{Name: name,
			Handler: func(ctx context.Context, e eventstore.RecordedEvent) error {
				if !once {
					once = true
					close(started)
				}
				return nil
			}})
	}()
	// An event appended now reaches the handler once the consumer runs,
	// whatever its checkpoint.
	if _, err := s.Append(ctx, "hold-1", eventstore.Any, eventstore.Event{Type: "Hold"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("consumer stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("the consumer did not start")
	}
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
}

// TestResetConsumer moves a checkpoint back, refuses a consumer that runs
// and one that does not exist.
func TestResetConsumer(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	out, errOut, code := run(t, "", "reset-consumer", path, "projector", "-from", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "reset-consumer", out, "reset projector", "from position 2 on", "6 to go")
	out, _, _ = run(t, "", "consumers", path, "-json")
	expect(t, "consumers after the reset", out, `"position":1,`)

	_, errOut, code = run(t, "", "reset-consumer", path, "projektor")
	if code != 1 || !strings.Contains(errOut, `no consumer "projektor"`) {
		t.Errorf("unknown consumer: exit %d: %s", code, errOut)
	}
	out, _, _ = run(t, "", "consumers", path)
	if strings.Contains(out, "projektor") {
		t.Error("a reset of an unknown consumer created it")
	}

	holdConsumer(t, path, "projector")
	_, errOut, code = run(t, "", "reset-consumer", path, "projector", "-from", "0")
	if code != 1 || !strings.Contains(errOut, "consumer projector is running") || !strings.Contains(errOut, "stop it first") {
		t.Errorf("running consumer: exit %d: %s", code, errOut)
	}
}

// TestParked lists a consumer's parked events, retries one (which the
// consumer then handles when it starts again), drops one, and refuses
// while the consumer runs.
func TestParked(t *testing.T) {
	t.Parallel()
	path := parkedFixture(t)
	out, errOut, code := run(t, "", "parked", path, "careful")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "parked", out, "POSITION", "ATTEMPTS", "cannot pay", "order-0", "3 parked events")

	out, errOut, code = run(t, "", "parked", path, "careful", "-retry", "2")
	if code != 0 {
		t.Fatalf("-retry: exit %d: %s", code, errOut)
	}
	expect(t, "-retry", out, "position 2 again when it next starts")
	_, errOut, code = run(t, "", "parked", path, "careful", "-drop", "4")
	if code != 0 {
		t.Fatalf("-drop: exit %d: %s", code, errOut)
	}
	_, errOut, code = run(t, "", "parked", path, "careful", "-drop", "5")
	if code != 1 || !strings.Contains(errOut, "not parked") {
		t.Errorf("-drop of an event not parked: exit %d: %s", code, errOut)
	}
	_, errOut, code = run(t, "", "parked", path, "nobody")
	if code != 1 || !strings.Contains(errOut, `no consumer "nobody"`) {
		t.Errorf("unknown consumer: exit %d: %s", code, errOut)
	}
	out, _, _ = run(t, "", "parked", path, "careful", "-json")
	if got := strings.Count(out, "\n"); got != 2 || !strings.Contains(out, `"position":2,`) ||
		!strings.Contains(out, `"attempts":0`) || !strings.Contains(out, `"position":6,`) {
		t.Errorf("after -retry 2 and -drop 4:\n%s", out)
	}

	// The consumer, started again, handles the retried event first.
	s := openStore(t, path)
	var handled []int64
	runConsumer(t, s, "careful", 2, func(e eventstore.RecordedEvent) error {
		handled = append(handled, e.Position)
		return nil
	})
	s.Close()
	if len(handled) != 1 || handled[0] != 2 {
		t.Errorf("the consumer handled %v after the retry, want [2]", handled)
	}
	out, _, _ = run(t, "", "parked", path, "careful")
	expect(t, "parked after the retry", out, "1 parked events")

	holdConsumer(t, path, "careful")
	_, errOut, code = run(t, "", "parked", path, "careful", "-retry", "6")
	if code != 1 || !strings.Contains(errOut, "consumer careful is running") {
		t.Errorf("-retry while it runs: exit %d: %s", code, errOut)
	}
}

// TestVacuum gives the space of a purged stream back, and refuses while
// another process has the file open.
func TestVacuum(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	s := openStore(t, path)
	ctx := context.Background()
	big := make([]eventstore.Event, 200)
	for i := range big {
		big[i] = eventstore.Event{Type: "Big", Data: []byte(`"` + strings.Repeat("x", 4000) + `"`)}
	}
	if _, err := s.Append(ctx, "big-1", eventstore.Any, big...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeStream(ctx, "big-1"); err != nil {
		t.Fatal(err)
	}
	// Open: refused, and the file keeps its events.
	_, errOut, code := run(t, "", "vacuum", path)
	if code != 1 || !strings.Contains(errOut, "in use by another process") {
		t.Errorf("vacuum of a file in use: exit %d: %s", code, errOut)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSizes(t, path)
	out, errOut, code := run(t, "", "vacuum", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "vacuum", out, "vacuumed "+path, "before", "after", "freed")
	if after := fileSizes(t, path); after >= before/2 {
		t.Errorf("%d bytes before, %d after", before, after)
	}
	out, errOut, code = run(t, "", "verify", path)
	if code != 0 {
		t.Fatalf("verify after vacuum: exit %d: %s%s", code, out, errOut)
	}
	expect(t, "verify after vacuum", out, "events: 7", "ok")
}

// TestVacuum_ConvertsOldFile: vacuum converts a file made before
// incremental vacuum (auto_vacuum off), so that the store then gives the
// space of purged events back while in use.
func TestVacuum_ConvertsOldFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=auto_vacuum(NONE)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE app (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	autoVacuum := func() (mode int) {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		return mode
	}
	s := openStore(t, path)
	s.Close()
	if m := autoVacuum(); m != 0 {
		t.Fatalf("auto_vacuum %d before, want 0 (NONE)", m)
	}
	if _, errOut, code := run(t, "", "vacuum", path); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if m := autoVacuum(); m != 2 {
		t.Fatalf("auto_vacuum %d after, want 2 (INCREMENTAL)", m)
	}
	s = openStore(t, path)
	defer s.Close()
	ctx := context.Background()
	big := make([]eventstore.Event, 200)
	for i := range big {
		big[i] = eventstore.Event{Type: "Big", Data: []byte(`"` + strings.Repeat("x", 4000) + `"`)}
	}
	if _, err := s.Append(ctx, "big-1", eventstore.Any, big...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PurgeStream(ctx, "big-1"); err != nil {
		t.Fatal(err)
	}
	if freed, err := s.ReclaimSpace(ctx); err != nil || freed < 500_000 {
		t.Fatalf("ReclaimSpace: %d bytes, %v; want the purged 800 kB back", freed, err)
	}
}

func fileSizes(t *testing.T, path string) int64 {
	t.Helper()
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestVerify_ReportsWhenACheckFails damages a page of a store so that a
// check cannot run: Verify fails, and the command prints what it checked
// and the problems all the same, then the error, and exits 1.
func TestVerify_ReportsWhenACheckFails(t *testing.T) {
	t.Parallel()
	path, _ := manyEvents(t, 1200)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	page := fi.Size() / 4096 / 2 // a page of events, half way
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1024), page*4096); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, "", "verify", path)
	if code != 1 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	expect(t, "verify", out, "checked: ", "problem: integrity: could not check", "malformed")
	expect(t, "verify", errOut, "eventstore verify: verify ")
	out, _, code = run(t, "", "verify", path, "-json")
	var r struct {
		OK       bool     `json:"ok"`
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 {
		t.Fatalf("exit %d, %v: %s", code, err, out)
	}
	if r.OK || r.Error == "" || len(r.Problems) == 0 {
		t.Errorf("verify -json: %+v", r)
	}
}
