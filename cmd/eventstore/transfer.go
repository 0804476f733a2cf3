package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/google/uuid"
)

// The export format. Version 1 (no header line) is what earlier releases
// wrote; import reads both.
const (
	exportFormat  = "eventstore-export"
	exportVersion = 2
)

// formatHelp documents the export format, for export -h and import -h.
const formatHelp = `The export format (version 2) is JSON Lines in UTF-8, one record a line:

  {"format":"eventstore-export","version":2}
  {"id":"…","stream":"order-1","version":0,"position":1,"type":"Placed","data":{"total":10},"recorded_at":"…"}
  {"op":"delete","stream":"order-1","version":0}

The first line names the format. Then comes every event of the global log,
in position order, the events of deleted stream lives included, and a
deletion record where a stream was deleted: before the first event of its
next life, or at the end for a stream that is deleted now. Data (and
metadata) that is JSON in UTF-8 on one line without surrounding spaces is
written byte for byte as "data" ("metadata"); anything else as standard
base64 in "data_base64" ("metadata_base64"); empty data is left out.

Import appends the events with their IDs and versions and deletes where
the file deletes, so every stream ends with the same events and versions,
and deleted streams stay deleted; positions and times are the new file's.
It is idempotent: an event whose ID is already stored at its stream and
version, and a deletion already done, are skipped, so an interrupted
import is finished by running it again on the whole file. A line that
disagrees with the store (another event at that version, an ID stored
elsewhere) stops the import with an error that names the line; so does a
malformed line: a missing or nil id, no version or type, both data and
data_base64, an unknown field. What earlier transactions of the import
wrote stays: fix the line and run the import again. position and
recorded_at are read as information only. A file without the header line
(written by earlier releases) may restart a stream at version 0 in place
of a deletion record.

Export reads the log as it is when it begins; a deletion made while it
runs may or may not be in the file. Snapshots, consumer checkpoints and
purged streams are not exported: to copy everything, use backup.
`

func cmdExport(ctx context.Context, e *env, args []string) (err error) {
	fs := newFlags("export")
	out := fs.String("o", "", "write to file `OUT` instead of stdout (it must not exist)")
	_, store, b, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := b.FileStats(ctx)
	if err != nil {
		return err
	}
	w := e.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644); err != nil {
			return err
		}
		// A file cut short would read as the export of a smaller store.
		defer func() {
			if err != nil {
				f.Close()
				os.Remove(*out)
			}
		}()
		w = f
	}
	prog := newProgress(e, "exporting", "events", st.Events)
	defer prog.close()
	start := time.Now()
	n, err := export(ctx, store, st.LastPosition, w, prog)
	if err != nil {
		return err
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	prog.close()
	fmt.Fprintf(e.stderr, "exported %d events in %v\n", n, time.Since(start).Round(time.Millisecond))
	return nil
}

// export writes the store's log up to position last (where it was when
// the export began: later appends are left out) and its deletions, and
// returns how many events it wrote.
func export(ctx context.Context, store *eventstore.Store, last int64, w io.Writer, prog *progress) (int64, error) {
	bw := bufio.NewWriterSize(w, 256<<10)
	buf := fmt.Appendf(nil, `{"format":%q,"version":%d}`+"\n", exportFormat, exportVersion)
	if _, err := bw.Write(buf); err != nil {
		return 0, err
	}
	// The version of each stream's last event so far: a version that does
	// not follow it starts a new life, so the stream was deleted between.
	versions := make(map[string]int64)
	var n int64
	for ev, err := range store.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			return n, err
		}
		if ev.Position > last {
			break
		}
		buf = buf[:0]
		if v, ok := versions[ev.StreamID]; ok && ev.Version <= v {
			buf = appendDeletion(buf, ev.StreamID, v)
		}
		versions[ev.StreamID] = ev.Version
		if _, err := bw.Write(appendEvent(buf, ev)); err != nil {
			return n, err
		}
		n++
		prog.tick(n)
	}
	// The streams whose last life is deleted are the ones not listed.
	// Both lists are in byte order of the stream IDs.
	names := slices.Sorted(maps.Keys(versions))
	deleted := func(name string) error {
		_, err := bw.Write(appendDeletion(buf[:0], name, versions[name]))
		return err
	}
	i := 0
	for info, err := range store.ListStreams(ctx, eventstore.ListOptions{}) {
		if err != nil {
			return n, err
		}
		for ; i < len(names) && names[i] < info.ID; i++ {
			if err := deleted(names[i]); err != nil {
				return n, err
			}
		}
		if i < len(names) && names[i] == info.ID {
			i++
		}
	}
	for ; i < len(names); i++ {
		if err := deleted(names[i]); err != nil {
			return n, err
		}
	}
	return n, bw.Flush()
}

// appendEvent appends ev as a line of the export format. It writes the
// line by hand: encoding/json would compact and escape JSON data (a
// json.RawMessage too), so that it no longer reads back byte for byte.
func appendEvent(buf []byte, ev eventstore.RecordedEvent) []byte {
	buf = append(buf, `{"id":"`...)
	buf = append(buf, ev.ID.String()...)
	buf = append(buf, `","stream":`...)
	buf = appendString(buf, ev.StreamID)
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendInt(buf, ev.Version, 10)
	buf = append(buf, `,"position":`...)
	buf = strconv.AppendInt(buf, ev.Position, 10)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, ev.Type)
	buf = appendPayload(buf, "data", ev.Data)
	buf = appendPayload(buf, "metadata", ev.Metadata)
	buf = append(buf, `,"recorded_at":"`...)
	buf = ev.RecordedAt.UTC().AppendFormat(buf, time.RFC3339Nano)
	return append(buf, "\"}\n"...)
}

func appendDeletion(buf []byte, stream string, version int64) []byte {
	buf = append(buf, `{"op":"delete","stream":`...)
	buf = appendString(buf, stream)
	buf = append(buf, `,"version":`...)
	buf = strconv.AppendInt(buf, version, 10)
	return append(buf, "}\n"...)
}

// appendString appends s as a JSON string. Stream IDs and event types are
// valid UTF-8, so nothing is lost.
func appendString(buf []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(buf, b...)
}

// appendPayload appends the field name with p verbatim when it reads back
// byte for byte, and otherwise name_base64 with p in base64.
func appendPayload(buf []byte, name string, p []byte) []byte {
	switch {
	case len(p) == 0:
		return buf
	case verbatim(p):
		buf = append(buf, `,"`...)
		buf = append(buf, name...)
		buf = append(buf, `":`...)
		return append(buf, p...)
	}
	buf = append(buf, `,"`...)
	buf = append(buf, name...)
	buf = append(buf, `_base64":"`...)
	buf = base64.StdEncoding.AppendEncode(buf, p)
	return append(buf, '"')
}

// verbatim reports whether p can stand in a line as it is: one JSON value,
// valid UTF-8 (json.Valid does not check it), no line break (it would end
// the line) and no space around it (a decoder drops that).
func verbatim(p []byte) bool {
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	return !space(p[0]) && !space(p[len(p)-1]) && !bytes.ContainsAny(p, "\r\n") &&
		utf8.Valid(p) && json.Valid(p)
}

func cmdImport(ctx context.Context, e *env, args []string) error {
	fs := newFlags("import")
	in := fs.String("i", "", "read from file `IN` instead of stdin")
	batch := fs.Int("batch", 500, "`N` events per append, within one stream")
	perTx := fs.Int("tx", 5000, "`N` events per transaction")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	if *batch < 1 || *perTx < 1 {
		return usagef("-batch %d -tx %d: each must be 1 or more", *batch, *perTx)
	}
	if *in == "" && e.stdinTerminal {
		// Nobody is going to type an export: say what is expected rather
		// than wait, and create no file.
		return usagef("no input: give an export file with -i FILE, or pipe one in (eventstore export OLD.db | eventstore import %s)", pos[0])
	}
	r := e.stdin
	var total int64
	if *in != "" {
		f, err := os.Open(*in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
		total = countLines(*in)
	}
	// Import creates the file if needed: it is the one writing command.
	b, err := sqlite.Open(pos[0], nil)
	if err != nil {
		return err
	}
	store := eventstore.New(b, &eventstore.Options{MaxEventSize: -1})
	defer store.Close()
	st, err := b.FileStats(ctx)
	if err != nil {
		return err
	}
	imp := &importer{
		ctx: ctx, store: store, batch: *batch, perTx: *perTx,
		look:    st.Events > 0 || st.DeletedStreams > 0,
		legacy:  true,
		streams: make(map[string]*streamState),
	}
	prog := newProgress(e, "importing", "lines", total)
	defer prog.close()
	start := time.Now()
	if err := imp.read(r, prog); err != nil {
		return err
	}
	prog.close()
	fmt.Fprintf(e.stderr, "imported %d events (%d already there)", imp.written, imp.skipped)
	if imp.deleted+imp.deletedBefore > 0 {
		fmt.Fprintf(e.stderr, ", %d stream deletions (%d already done)", imp.deleted, imp.deletedBefore)
	}
	fmt.Fprintf(e.stderr, " in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// read applies the lines of r, and commits what is left in the queue.
func (imp *importer) read(r io.Reader, prog *progress) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		rec, err := parseRecord(sc.Bytes())
		if err == nil {
			err = imp.add(line, rec)
		}
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				return err
			}
			return &lineError{first: line, last: line, err: err}
		}
		prog.tick(int64(line))
	}
	if err := sc.Err(); err != nil {
		return &lineError{first: line + 1, last: line + 1, err: err}
	}
	return imp.commit()
}

// lineError is an import error with the input lines it comes from.
type lineError struct {
	first, last int
	err         error
}

func (e *lineError) Error() string {
	if e.first == e.last {
		return fmt.Sprintf("line %d: %v", e.first, e.err)
	}
	return fmt.Sprintf("lines %d-%d: %v", e.first, e.last, e.err)
}

func (e *lineError) Unwrap() error { return e.err }

// record is one line of the export format: the header, an event or a
// deletion.
type record struct {
	Format         string          `json:"format"` // the header
	Op             string          `json:"op"`     // "delete"
	ID             string          `json:"id"`
	Stream         string          `json:"stream"`
	Version        *int64          `json:"version"` // the header's: the format's
	Type           string          `json:"type"`
	Data           json.RawMessage `json:"data"`
	DataBase64     json.RawMessage `json:"data_base64"`
	Metadata       json.RawMessage `json:"metadata"`
	MetadataBase64 json.RawMessage `json:"metadata_base64"`
	Position       json.RawMessage `json:"position"`    // not imported
	RecordedAt     json.RawMessage `json:"recorded_at"` // not imported

	event eventstore.Event // the parsed event
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", eventstore.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// parseRecord parses and checks one line.
func parseRecord(line []byte) (*record, error) {
	var rec record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, badf("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badf("more than one JSON value on the line, or data after it")
	}
	eventFields := rec.ID != "" || rec.Type != "" || rec.Data != nil || rec.DataBase64 != nil ||
		rec.Metadata != nil || rec.MetadataBase64 != nil || rec.Position != nil || rec.RecordedAt != nil
	switch {
	case rec.Format != "":
		if rec.Format != exportFormat || eventFields || rec.Op != "" || rec.Stream != "" {
			return nil, badf("not a header of the %s format", exportFormat)
		}
		if rec.Version == nil || *rec.Version != exportVersion {
			v := "none"
			if rec.Version != nil {
				v = strconv.FormatInt(*rec.Version, 10)
			}
			return nil, badf("format version %s: this eventstore reads versions 1 and %d", v, exportVersion)
		}
		return &rec, nil
	case rec.Op == "delete":
		if eventFields {
			return nil, badf("a deletion has only op, stream and version")
		}
	case rec.Op != "":
		return nil, badf("unknown op %q", rec.Op)
	}
	if err := eventstore.ValidateStreamID(rec.Stream); err != nil {
		return nil, err
	}
	if rec.Version == nil {
		return nil, badf("no version")
	}
	if *rec.Version < 0 {
		return nil, badf("version %d", *rec.Version)
	}
	if rec.Op == "delete" {
		return &rec, nil
	}
	if rec.ID == "" {
		return nil, badf("no id: an imported event keeps its ID, so that importing again skips it")
	}
	id, err := uuid.Parse(rec.ID)
	if err != nil {
		return nil, badf("id %q: %v", rec.ID, err)
	}
	if id == uuid.Nil {
		return nil, badf("id is the nil UUID: the event would get a new ID on every import")
	}
	if rec.Type == "" {
		return nil, badf("no type")
	}
	rec.event = eventstore.Event{ID: id, Type: rec.Type}
	if rec.event.Data, err = payload("data", rec.Data, rec.DataBase64); err != nil {
		return nil, err
	}
	if rec.event.Metadata, err = payload("metadata", rec.Metadata, rec.MetadataBase64); err != nil {
		return nil, err
	}
	return &rec, nil
}

// payload returns an event's data or metadata from the verbatim JSON or
// the base64 field of a line; never both.
func payload(name string, raw, b64 json.RawMessage) ([]byte, error) {
	switch {
	case raw != nil && b64 != nil:
		return nil, badf("both %s and %s_base64: give one", name, name)
	case raw != nil:
		return raw, nil
	case b64 == nil:
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(b64, &s); err != nil {
		return nil, badf("%s_base64 is not a string", name)
	}
	p, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, badf("%s_base64: %v", name, err)
	}
	return p, nil
}

// importer applies the records of a file to the store in order, a
// transaction at a time, and skips what the store already has. It keeps
// a model of each stream it has met: what the file said so far, and what
// the store holds (read once, when the stream first appears, then kept
// up to date with what the import writes). Nothing else may write to the
// streams being imported meanwhile; if something does, the expected
// versions of the appends catch it.
type importer struct {
	ctx          context.Context
	store        *eventstore.Store
	batch, perTx int
	look         bool // the store held something when the import began
	legacy       bool // no header seen: a version back at 0 deletes the stream
	streams      map[string]*streamState
	queue        []*op // waiting for the transaction
	size         int   // records in queue

	written, skipped       int64
	deleted, deletedBefore int64
}

// streamState is what the import knows of one stream.
type streamState struct {
	next int64 // the version the file's next event of the stream must have
	life int   // the life of the stream the file is at: deletions so far
	// lives holds the event IDs of each life the store had when the
	// import met the stream; the last one was then current (empty when
	// the stream was deleted). Lives the file has gone past are dropped.
	lives     [][]uuid.UUID
	storeLife int   // the store's current life
	version   int64 // the last version of the store's current life, -1 for none
}

// op is an append or a deletion waiting for the transaction, with the
// input lines it comes from.
type op struct {
	stream  string
	lines   []int
	version int64              // an append's first version; a deletion's expected version
	events  []eventstore.Event // nil for a deletion
}

func (imp *importer) add(line int, rec *record) error {
	if rec.Format != "" {
		imp.legacy = false
		return nil
	}
	st, err := imp.stream(rec.Stream)
	if err != nil {
		return err
	}
	v := *rec.Version
	if rec.Op == "delete" {
		if st.next == 0 {
			return fmt.Errorf("stream %s: the file deletes it at version %d, but has no event of it before", rec.Stream, v)
		}
		if v != st.next-1 {
			return fmt.Errorf("stream %s: the file deletes it at version %d, but its last event in the file is version %d", rec.Stream, v, st.next-1)
		}
		return imp.deletion(line, rec.Stream, st)
	}
	if v != st.next {
		switch {
		case st.next == 0:
			return fmt.Errorf("stream %s: its first event in the file (since any deletion) is version %d, not 0", rec.Stream, v)
		case !imp.legacy || v != 0:
			return fmt.Errorf("stream %s: version %d follows version %d in the file", rec.Stream, v, st.next-1)
		}
		if err := imp.deletion(line, rec.Stream, st); err != nil {
			return err
		}
	}
	st.next = v + 1
	ev := rec.event
	if st.life < st.storeLife || (st.life < len(st.lives) && v < int64(len(st.lives[st.life]))) {
		// The store has this life, or this part of it, already.
		ids := st.lives[st.life]
		switch {
		case v < int64(len(ids)) && ids[v] == ev.ID:
			imp.skipped++
			if st.life == st.storeLife && v == int64(len(ids))-1 {
				st.lives[st.life] = nil // the file has caught up: what follows is new
			}
			return nil
		case v < int64(len(ids)):
			return fmt.Errorf("stream %s: version %d is event %s in the store, the file has %s", rec.Stream, v, ids[v], ev.ID)
		}
		return fmt.Errorf("stream %s: the store deleted this life at version %d, the file has version %d", rec.Stream, len(ids)-1, v)
	}
	if v != st.version+1 {
		return fmt.Errorf("stream %s: the store is at version %d, the file has version %d", rec.Stream, st.version, v)
	}
	st.version = v
	if o := imp.last(); o != nil && o.events != nil && o.stream == rec.Stream && len(o.events) < imp.batch {
		o.events = append(o.events, ev)
		o.lines = append(o.lines, line)
	} else {
		imp.queue = append(imp.queue, &op{stream: rec.Stream, lines: []int{line}, version: v, events: []eventstore.Event{ev}})
	}
	return imp.queued()
}

// deletion ends the stream's current life in the file at line, and
// deletes it in the store unless the store did already.
func (imp *importer) deletion(line int, stream string, st *streamState) error {
	v := st.next - 1
	life := st.life
	st.next, st.life = 0, st.life+1
	if life < st.storeLife {
		if n := int64(len(st.lives[life])); n != v+1 {
			return fmt.Errorf("stream %s: the store deleted this life at version %d, the file at %d", stream, n-1, v)
		}
		st.lives[life] = nil
		imp.deletedBefore++
		return nil
	}
	if st.version != v {
		return fmt.Errorf("stream %s: the store is at version %d, the file deletes it at %d", stream, st.version, v)
	}
	if life < len(st.lives) {
		st.lives[life] = nil
	}
	st.storeLife, st.version = st.storeLife+1, -1
	imp.queue = append(imp.queue, &op{stream: stream, lines: []int{line}, version: v})
	return imp.queued()
}

func (imp *importer) last() *op {
	if len(imp.queue) == 0 {
		return nil
	}
	return imp.queue[len(imp.queue)-1]
}

// queued counts a record put in the queue, and commits the queue when it
// holds a transaction's worth.
func (imp *importer) queued() error {
	imp.size++
	if imp.size >= imp.perTx {
		return imp.commit()
	}
	return nil
}

// stream returns the model of a stream, reading what the store holds of
// it when the import first meets it.
func (imp *importer) stream(id string) (*streamState, error) {
	if st, ok := imp.streams[id]; ok {
		return st, nil
	}
	st := &streamState{lives: [][]uuid.UUID{nil}, version: -1}
	if imp.look {
		// The store's log holds the stream's lives one after the other;
		// each starts at version 0.
		for ev, err := range imp.store.ReadAll(imp.ctx, eventstore.ReadOptions{}, eventstore.Filter{Streams: []string{id}}) {
			if err != nil {
				return nil, err
			}
			cur := &st.lives[len(st.lives)-1]
			if ev.Version == 0 && len(*cur) > 0 {
				st.lives = append(st.lives, nil)
				cur = &st.lives[len(st.lives)-1]
			}
			if ev.Version != int64(len(*cur)) {
				return nil, fmt.Errorf("stream %s: the store has version %d after %d", id, ev.Version, len(*cur)-1)
			}
			*cur = append(*cur, ev.ID)
		}
		version, err := imp.store.StreamVersion(imp.ctx, id)
		if err != nil {
			return nil, err
		}
		current := st.lives[len(st.lives)-1]
		switch {
		case version < 0 && len(current) > 0: // deleted
			st.lives = append(st.lives, nil)
		case version != int64(len(current))-1:
			return nil, fmt.Errorf("stream %s changed while the import read it", id)
		}
		st.storeLife = len(st.lives) - 1
		st.version = int64(len(st.lives[st.storeLife])) - 1
	}
	imp.streams[id] = st
	return st, nil
}

// commit applies the queue in one transaction.
func (imp *importer) commit() error {
	if len(imp.queue) == 0 {
		return nil
	}
	var failed bool
	var written, deleted int64
	err := imp.store.Transact(imp.ctx, func(ctx context.Context) error {
		written, deleted = 0, 0
		for _, o := range imp.queue {
			if err := imp.apply(ctx, o); err != nil {
				failed = true
				return err
			}
			if o.events == nil {
				deleted++
			} else {
				written += int64(len(o.events))
			}
		}
		return nil
	})
	if err != nil {
		if failed || errors.Is(err, context.Canceled) {
			return err
		}
		return &lineError{first: imp.queue[0].lines[0], last: imp.last().lines[len(imp.last().lines)-1], err: err}
	}
	imp.written += written
	imp.deleted += deleted
	imp.queue, imp.size = imp.queue[:0], 0
	return nil
}

// apply appends or deletes, inside the transaction of ctx. When an append
// of several events fails, it appends them one by one to find the line
// that fails: each append in a transaction is undone alone.
func (imp *importer) apply(ctx context.Context, o *op) error {
	if o.events == nil {
		if err := imp.store.DeleteStream(ctx, o.stream, eventstore.Exact(o.version)); err != nil {
			return &lineError{first: o.lines[0], last: o.lines[0], err: err}
		}
		return nil
	}
	if err := imp.append(ctx, o.stream, o.version, o.events); err == nil || len(o.events) == 1 {
		if err != nil {
			return &lineError{first: o.lines[0], last: o.lines[0], err: err}
		}
		return nil
	}
	for i, ev := range o.events {
		if err := imp.append(ctx, o.stream, o.version+int64(i), []eventstore.Event{ev}); err != nil {
			return &lineError{first: o.lines[i], last: o.lines[i], err: err}
		}
	}
	return nil
}

// append appends events at version first and on.
func (imp *importer) append(ctx context.Context, stream string, first int64, events []eventstore.Event) error {
	expected := eventstore.NoStream
	if first > 0 {
		expected = eventstore.Exact(first - 1)
	}
	res, err := imp.store.Append(ctx, stream, expected, events...)
	switch {
	case err != nil && len(events) == 1:
		return fmt.Errorf("event %s: %w", events[0].ID, err)
	case err != nil:
		return err
	}
	if want := first + int64(len(events)) - 1; res.Version != want {
		return fmt.Errorf("append %s: the events are stored at version %d, the file has %d", stream, res.Version, want)
	}
	return nil
}
