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
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
	if len(lines) != 8 {
		t.Fatalf("%d lines", len(lines))
	}
	if lines[0] != `{"format":"eventstore-export","version":2}` {
		t.Fatalf("header %s", lines[0])
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &first); err != nil || first["stream"] != "order-0" {
		t.Fatalf("first event %s: %v", lines[1], err)
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

// openStore opens a store file for a test and closes it at the end.
func openStore(t *testing.T, path string) *eventstore.Store {
	t.Helper()
	b, err := sqlite.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := eventstore.New(b, &eventstore.Options{MaxEventSize: -1})
	t.Cleanup(func() { s.Close() })
	return s
}

// awkwardStore writes a store whose export is easy to get wrong: JSON data
// that re-encoding would change, data that is not JSON or not UTF-8,
// binary metadata, a deleted stream, a stream deleted and started again,
// and a stream deleted twice.
func awkwardStore(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "awkward.db")
	s := openStore(t, path)
	ctx := context.Background()
	app := func(stream string, events ...eventstore.Event) {
		t.Helper()
		if _, err := s.Append(ctx, stream, eventstore.Any, events...); err != nil {
			t.Fatal(err)
		}
	}
	del := func(stream string) {
		t.Helper()
		if err := s.DeleteStream(ctx, stream, eventstore.Any); err != nil {
			t.Fatal(err)
		}
	}
	ev := func(typ, data, meta string) eventstore.Event {
		e := eventstore.Event{Type: typ}
		if data != "" {
			e.Data = []byte(data)
		}
		if meta != "" {
			e.Metadata = []byte(meta)
		}
		return e
	}
	app("again-1", ev("Old", `{"life":0}`, ""), ev("Old", `{"life":0}`, ""), ev("Old", `{"life":0}`, ""))
	app("doc-1",
		ev("Spaced", `{ "a" : 1,  "b" : [ 1, 2 ] }`, `{ "by" : "ann" }`),
		ev("Multiline", "{\n  \"a\": 1\n}\n", ""),
		ev("Padded", "  {\"a\":1}  ", ""),
		ev("HTML", `{"html":"<a href=\"x\">&amp;</a>"}`, `{"q":"a<b && c>d"}`),
		ev("Separator", "{\"s\":\"one\u2028two\u2029three\"}", ""),
		ev("Escaped", `{"s":"\u003c\u2028\/"}`, ""),
		ev("Null", `null`, `null`),
		ev("Number", `1.50`, ""),
		ev("Empty", "", ""))
	app("gone-1", ev("Doomed", `{"n":1}`, ""), ev("Doomed", `{"n":2}`, ""))
	app("bin-1",
		ev("BadUTF8InJSON", "{\"s\":\"\xff\xfe\"}", ""),
		ev("Binary", "\xff\x00\x01", "\x00\x01\x02\xff"),
		ev("CRLF", "{\"a\":1}\r\n", "\r"))
	del("again-1")
	app("again-1", ev("New", `{"life":1}`, `{"m":1}`), ev("New", `{"life":1}`, ""))
	app("twice-1", ev("T", `{}`, ""))
	del("twice-1")
	app("twice-1", ev("T", `{}`, ""), ev("T", `[]`, ""))
	del("gone-1")
	app("doc-1", ev("Later", `{"after":"deletes"}`, ""))
	del("twice-1")
	return path
}

// logOf reads a store's whole global log, and its live streams with their
// events.
type storeImage struct {
	log     []eventstore.RecordedEvent
	streams map[string][]eventstore.RecordedEvent
}

func imageOf(t *testing.T, path string) storeImage {
	t.Helper()
	s := openStore(t, path)
	ctx := context.Background()
	img := storeImage{streams: map[string][]eventstore.RecordedEvent{}}
	for ev, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		img.log = append(img.log, ev)
	}
	for info, err := range s.ListStreams(ctx, eventstore.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		for ev, err := range s.ReadStream(ctx, info.ID, eventstore.ReadOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
			img.streams[info.ID] = append(img.streams[info.ID], ev)
		}
		if n := int64(len(img.streams[info.ID])); n != info.Version+1 {
			t.Fatalf("%s: version %d with %d events", info.ID, info.Version, n)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return img
}

// sameEvent compares what an import must keep: ID, stream, version, type,
// data and metadata, byte for byte (positions and times are the copy's own).
func sameEvent(a, b eventstore.RecordedEvent) bool {
	return a.ID == b.ID && a.StreamID == b.StreamID && a.Version == b.Version && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Metadata, b.Metadata)
}

// sameImage reports how the copy differs from the source: every live
// stream with the same events, no other live stream, and the global log
// in the same order.
func sameImage(t *testing.T, src, cp storeImage) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.FailNow() // one difference tends to repeat on every later event
		}
	}()
	for id, want := range src.streams {
		got := cp.streams[id]
		if len(got) != len(want) {
			t.Errorf("stream %s: %d events in the copy, %d in the source", id, len(got), len(want))
			continue
		}
		for i := range want {
			if !sameEvent(want[i], got[i]) {
				t.Errorf("stream %s version %d:\n got %+v\nwant %+v", id, i, got[i], want[i])
				break
			}
		}
	}
	for id := range cp.streams {
		if _, ok := src.streams[id]; !ok {
			t.Errorf("stream %s exists in the copy only (%d events)", id, len(cp.streams[id]))
		}
	}
	if len(cp.log) != len(src.log) {
		t.Errorf("global log: %d events in the copy, %d in the source", len(cp.log), len(src.log))
		return
	}
	for i := range src.log {
		if !sameEvent(src.log[i], cp.log[i]) {
			t.Errorf("global log entry %d:\n got %+v\nwant %+v", i, cp.log[i], src.log[i])
			return
		}
	}
}

func TestExportImport_Faithful(t *testing.T) {
	t.Parallel()
	src := awkwardStore(t)
	dir := t.TempDir()
	export := filepath.Join(dir, "export.jsonl")
	if _, errOut, code := run(t, "", "export", "-o", export, src); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if !json.Valid([]byte(line)) || !utf8.ValidString(line) {
			t.Errorf("line %d is not valid JSON in UTF-8: %q", i+1, line)
		}
	}

	// Small batches and transactions, so that runs and commits split
	// streams and lives.
	cp := filepath.Join(dir, "copy.db")
	_, errOut, code := run(t, "", "import", "-i", export, "-batch", "2", "-tx", "3", cp)
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, errOut)
	}
	expect(t, "import", errOut, "imported 23 events (0 already there), 4 stream deletions (0 already done)")
	want := imageOf(t, src)
	sameImage(t, want, imageOf(t, cp))
	for _, gone := range []string{"gone-1", "twice-1"} {
		if _, ok := want.streams[gone]; ok {
			t.Fatalf("the source's %s is not deleted", gone)
		}
	}
	if got := len(imageOf(t, cp).streams["again-1"]); got != 2 {
		t.Errorf("again-1 has %d events in the copy, want its current life's 2", got)
	}

	// Import the same file again: nothing is written.
	_, errOut, code = run(t, string(data), "import", "-batch", "2", "-tx", "3", cp)
	if code != 0 {
		t.Fatalf("second import: exit %d: %s", code, errOut)
	}
	expect(t, "second import", errOut, "imported 0 events (23 already there), 0 stream deletions (4 already done)")
	sameImage(t, want, imageOf(t, cp))

	// The copy exports to the same file, but for positions and times.
	again := filepath.Join(dir, "again.jsonl")
	if _, errOut, code := run(t, "", "export", "-o", again, cp); code != 0 {
		t.Fatalf("export of the copy: %s", errOut)
	}
	data2, err := os.ReadFile(again)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := withoutPlaces(t, data), withoutPlaces(t, data2); a != b {
		t.Errorf("the copy's export differs:\n%s\n%s", a, b)
	}
}

// withoutPlaces drops each line's position and recorded_at, the fields
// that an import does not keep.
func withoutPlaces(t *testing.T, data []byte) string {
	t.Helper()
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		delete(m, "position")
		delete(m, "recorded_at")
		b, _ := json.Marshal(m)
		out.Write(b)
		out.WriteByte('\n')
	}
	return out.String()
}

// manyEvents writes n events over a few streams, with a deleted and
// restarted stream, and exports them.
func manyEvents(t *testing.T, n int) (path, export string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "many.db")
	s := openStore(t, path)
	ctx := context.Background()
	for i := range n {
		stream := fmt.Sprintf("s-%d", i/400%3) // runs of one stream, as appends batch them
		if i%97 == 96 {
			stream = "solo-1"
		}
		if _, err := s.Append(ctx, stream, eventstore.Any, eventstore.Event{Type: "E", Data: fmt.Appendf(nil, `{"i": %d}`, i)}); err != nil {
			t.Fatal(err)
		}
		if i == n/2 {
			if err := s.DeleteStream(ctx, "s-1", eventstore.Any); err != nil {
				t.Fatal(err)
			}
		}
	}
	export = filepath.Join(t.TempDir(), "many.jsonl")
	if _, errOut, code := run(t, "", "export", "-o", export, path); code != 0 {
		t.Fatalf("export: %s", errOut)
	}
	return path, export
}

// TestImport_ResumeAnywhere imports the first lines of an export, as an
// interrupted import leaves it, and then the whole file.
func TestImport_ResumeAnywhere(t *testing.T) {
	t.Parallel()
	src, export := manyEvents(t, 1200)
	want := imageOf(t, src)
	data, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	deletion := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, `"op":"delete"`) }) + 1
	if deletion == 0 {
		t.Fatal("the export has no deletion")
	}
	for _, c := range []struct {
		first      int
		batch, tx  string
		whatBreaks string
	}{
		{1003, "500", "5000", "the default batches"},
		{1, "500", "5000", "the header only"},
		{2, "500", "5000", "the first event only"},
		{deletion - 1, "7", "20", "up to a deletion"},
		{deletion, "7", "20", "a deletion as the last line"},
		{37, "7", "20", "small batches"},
	} {
		cp := filepath.Join(t.TempDir(), "copy.db")
		head := strings.Join(lines[:c.first], "")
		if _, errOut, code := run(t, head, "import", "-batch", c.batch, "-tx", c.tx, cp); code != 0 {
			t.Fatalf("%s: the first %d lines: exit %d: %s", c.whatBreaks, c.first, code, errOut)
		}
		_, errOut, code := run(t, "", "import", "-i", export, "-batch", c.batch, "-tx", c.tx, cp)
		if code != 0 {
			t.Fatalf("%s: the whole file after %d lines: exit %d: %s", c.whatBreaks, c.first, code, errOut)
		}
		sameImage(t, want, imageOf(t, cp))
	}
}

func TestImport_RefusesBadLines(t *testing.T) {
	t.Parallel()
	const (
		id1 = "0190a5a0-0000-7000-8000-000000000001"
		id2 = "0190a5a0-0000-7000-8000-000000000002"
		id3 = "0190a5a0-0000-7000-8000-000000000003"
	)
	good := `{"id":"` + id1 + `","stream":"a-1","version":0,"type":"T","data":{"x":1}}` + "\n"
	cases := []struct {
		name  string
		input string
		want  []string
	}{
		{"nil id", good + `{"id":"00000000-0000-0000-0000-000000000000","stream":"a-1","version":1,"type":"T"}`,
			[]string{"line 2", "nil"}},
		{"no id", good + `{"stream":"a-1","version":1,"type":"T"}`, []string{"line 2", "id"}},
		{"data twice", good + `{"id":"` + id2 + `","stream":"a-1","version":1,"type":"T","data":{"x":1},"data_base64":"eyJ4IjoxfQ=="}`,
			[]string{"line 2", "data", "data_base64"}},
		{"metadata twice", good + `{"id":"` + id2 + `","stream":"a-1","version":1,"type":"T","metadata":{},"metadata_base64":""}`,
			[]string{"line 2", "metadata", "metadata_base64"}},
		{"bad base64", good + `{"id":"` + id2 + `","stream":"a-1","version":1,"type":"T","data_base64":"!!"}`,
			[]string{"line 2", "data_base64"}},
		{"not JSON", good + "{\n", []string{"line 2"}},
		{"unknown field", good + `{"id":"` + id2 + `","stream":"a-1","version":1,"type":"T","dat":{}}`,
			[]string{"line 2", "dat"}},
		{"no version", good + `{"id":"` + id2 + `","stream":"a-1","type":"T"}`, []string{"line 2", "version"}},
		{"version gap", good + `{"id":"` + id2 + `","stream":"a-1","version":2,"type":"T"}`, []string{"line 2", "version"}},
		{"no type", good + `{"id":"` + id2 + `","stream":"a-1","version":1}`, []string{"line 2", "type"}},
		{"bad stream", good + `{"id":"` + id2 + `","stream":"a\u0001","version":0,"type":"T"}`, []string{"line 2", "stream"}},
		{"id twice", good + `{"id":"` + id2 + `","stream":"b-1","version":0,"type":"T"}` + "\n" +
			`{"id":"` + id1 + `","stream":"b-1","version":1,"type":"T"}`, []string{"line 3", "duplicate event ID"}},
		{"id twice in one run", good + `{"id":"` + id2 + `","stream":"a-1","version":1,"type":"T"}` + "\n" +
			`{"id":"` + id3 + `","stream":"a-1","version":2,"type":"T"}` + "\n" +
			`{"id":"` + id1 + `","stream":"a-1","version":3,"type":"T"}`, []string{"line 4", "duplicate event ID"}},
		{"delete at a wrong version", good + `{"op":"delete","stream":"a-1","version":3}`, []string{"line 2", "version"}},
		{"unknown op", good + `{"op":"purge","stream":"a-1"}`, []string{"line 2", "purge"}},
		{"newer format", `{"format":"eventstore-export","version":99}` + "\n" + good, []string{"line 1", "99"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cp := filepath.Join(t.TempDir(), "copy.db")
			_, errOut, code := run(t, c.input+"\n", "import", cp)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, errOut)
			}
			expect(t, "import", errOut, c.want...)
			if img := imageOf(t, cp); len(img.log) != 0 {
				t.Errorf("%d events written", len(img.log))
			}
		})
	}
}

// TestImport_ConflictingStore imports into a store whose stream holds
// other events: refused, at the line, and the stream is left alone.
func TestImport_ConflictingStore(t *testing.T) {
	t.Parallel()
	cp := filepath.Join(t.TempDir(), "copy.db")
	s := openStore(t, cp)
	if _, err := s.Append(context.Background(), "a-1", eventstore.NoStream, eventstore.Event{Type: "Mine"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	input := `{"id":"0190a5a0-0000-7000-8000-000000000009","stream":"b-1","version":0,"type":"T"}` + "\n" +
		`{"id":"0190a5a0-0000-7000-8000-000000000001","stream":"a-1","version":0,"type":"T"}` + "\n"
	_, errOut, code := run(t, input, "import", cp)
	if code != 1 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "import", errOut, "line 2", "a-1")
	img := imageOf(t, cp)
	if len(img.log) != 1 || img.log[0].Type != "Mine" {
		t.Errorf("the store changed: %+v", img.log)
	}
}

// TestImport_LegacyFile imports a file as the export of earlier releases
// wrote it: no header, and a stream's version back at 0 where it was
// deleted and started again.
func TestImport_LegacyFile(t *testing.T) {
	t.Parallel()
	input := `{"id":"0190a5a0-0000-7000-8000-000000000001","stream":"a-1","version":0,"position":1,"type":"T","data":{"x":1},"recorded_at":"2026-01-01T00:00:00Z"}
{"id":"0190a5a0-0000-7000-8000-000000000002","stream":"a-1","version":1,"position":2,"type":"T","data_base64":"/wA=","recorded_at":"2026-01-01T00:00:00Z"}
{"id":"0190a5a0-0000-7000-8000-000000000003","stream":"a-1","version":0,"position":3,"type":"T","metadata":{"m":1},"recorded_at":"2026-01-01T00:00:00Z"}
`
	cp := filepath.Join(t.TempDir(), "copy.db")
	if _, errOut, code := run(t, input, "import", cp); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	img := imageOf(t, cp)
	if len(img.log) != 3 || len(img.streams["a-1"]) != 1 || img.streams["a-1"][0].ID.String() != "0190a5a0-0000-7000-8000-000000000003" {
		t.Fatalf("log %+v, a-1 %+v", img.log, img.streams["a-1"])
	}
	if !bytes.Equal(img.log[1].Data, []byte{0xff, 0}) || string(img.streams["a-1"][0].Metadata) != `{"m":1}` {
		t.Errorf("data %q, metadata %q", img.log[1].Data, img.streams["a-1"][0].Metadata)
	}
}

// TestReadJSON prints events as the export does: valid JSON in UTF-8, the
// data as stored.
func TestReadJSON(t *testing.T) {
	t.Parallel()
	path := awkwardStore(t)
	for _, stream := range []string{"doc-1", "bin-1"} {
		out, errOut, code := run(t, "", "read", "-json", path, stream)
		if code != 0 {
			t.Fatalf("read: exit %d: %s", code, errOut)
		}
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			if !json.Valid([]byte(line)) || !utf8.ValidString(line) {
				t.Errorf("not valid JSON in UTF-8: %q", line)
			}
		}
		if stream == "doc-1" {
			expect(t, "read -json", out, `"data":{ "a" : 1,  "b" : [ 1, 2 ] }`, `"data":{"html":"<a href=\"x\">&amp;</a>"}`)
		}
	}
}
