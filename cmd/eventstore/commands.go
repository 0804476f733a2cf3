package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// openArgs parses a command's flags and want positional arguments, the
// first of which is the store file, and opens it read-only.
func openArgs(e *env, fs *flag.FlagSet, args []string, want int) ([]string, *eventstore.Store, *sqlite.Backend, error) {
	pos, err := parse(e, fs, args, want)
	if err != nil {
		return nil, nil, nil, err
	}
	store, b, err := open(pos[0], false)
	return pos, store, b, err
}

// open opens the store file read-only, or for writing when write is set.
// A missing file is an error, never created.
func open(path string, write bool) (*eventstore.Store, *sqlite.Backend, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, err
	}
	b, err := sqlite.Open(path, &sqlite.Options{ReadOnly: !write, WatchInterval: 100 * time.Millisecond})
	if err != nil {
		return nil, nil, err
	}
	return eventstore.New(b, &eventstore.Options{MaxEventSize: -1}), b, nil
}

// jsonFlag adds the -json flag of the listing commands.
func jsonFlag(fs *flag.FlagSet, what string) *bool {
	return fs.Bool("json", false, what)
}

// newTable returns the writer of a table: columns separated by tabs in,
// aligned with two spaces out.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// jsonLine writes v as one line of JSON.
func jsonLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// jsonTime is a time in JSON: RFC 3339 in UTC, null when unknown.
func jsonTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func cmdStreams(ctx context.Context, e *env, args []string) error {
	fs := newFlags("streams")
	var opts eventstore.ListOptions
	fs.StringVar(&opts.Prefix, "prefix", "", "only stream IDs starting with `P`")
	fs.StringVar(&opts.Category, "category", "", "only streams of category `C`")
	fs.StringVar(&opts.After, "after", "", "only stream IDs after `ID` (paging)")
	fs.IntVar(&opts.Limit, "limit", 0, "at most `N` streams (0: all)")
	asJSON := jsonFlag(fs, "one JSON object per stream and line instead of a table")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	if err := nonNegative("limit", int64(opts.Limit)); err != nil {
		return err
	}
	store, _, err := open(pos[0], false)
	if err != nil {
		return err
	}
	defer store.Close()
	tw := newTable(e.stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "STREAM\tVERSION\tEVENTS\tCREATED\tUPDATED")
	}
	n := 0
	for info, err := range store.ListStreams(ctx, opts) {
		if err != nil {
			return err
		}
		n++
		if *asJSON {
			if err := jsonLine(e.stdout, streamJSON{info.ID, info.Version, info.Version + 1, jsonTime(info.CreatedAt), jsonTime(info.UpdatedAt)}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", info.ID, info.Version, info.Version+1, stamp(info.CreatedAt), stamp(info.UpdatedAt))
	}
	if *asJSON {
		return nil
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d streams\n", n)
	return nil
}

type streamJSON struct {
	Stream    string     `json:"stream"`
	Version   int64      `json:"version"`
	Events    int64      `json:"events"` // in its current life
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
}

func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := newFlags("read")
	var opts eventstore.ReadOptions
	fs.Int64Var(&opts.From, "from", 0, "first version `N` (backward: 0 is the end)")
	fs.IntVar(&opts.Limit, "limit", 0, "at most `N` events (0: all)")
	fs.BoolVar(&opts.Backward, "backward", false, "newest first")
	asJSON := jsonFlag(fs, "one JSON object per event and line (the export's event lines)")
	pos, err := parse(e, fs, args, 2)
	if err != nil {
		return err
	}
	if err := firstErr(nonNegative("from", opts.From), nonNegative("limit", int64(opts.Limit))); err != nil {
		return err
	}
	store, _, err := open(pos[0], false)
	if err != nil {
		return err
	}
	defer store.Close()
	p := newPrinter(e.stdout, *asJSON, false)
	for ev, err := range store.ReadStream(ctx, pos[1], opts) {
		if err != nil {
			return err // it names the stream
		}
		if err := p.print(ev); err != nil {
			return err
		}
	}
	return p.flush()
}

func cmdTail(ctx context.Context, e *env, args []string) error {
	fs := newFlags("tail")
	from := fs.Int64("from", 0, "first global position `N` (default: only new events)")
	everything := fs.Bool("all", false, "start at the beginning of the log")
	stream := fs.String("stream", "", "only stream `S`")
	category := fs.String("category", "", "only category `C`")
	typ := fs.String("type", "", "only event type `T`")
	asJSON := jsonFlag(fs, "one JSON object per event and line (the export's event lines)")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	if err := nonNegative("from", *from); err != nil {
		return err
	}
	if *everything && isSet(fs, "from") {
		return usagef("-from and -all: give one")
	}
	var filter eventstore.Filter
	if *stream != "" {
		filter.Streams = []string{*stream}
	}
	if *category != "" {
		filter.Categories = []string{*category}
	}
	if *typ != "" {
		filter.Types = []string{*typ}
	}
	start := eventstore.FromNow
	switch {
	case *everything:
		start = 0
	case isSet(fs, "from"):
		start = *from
	}
	store, _, err := open(pos[0], false)
	if err != nil {
		return err
	}
	defer store.Close()
	sub, err := store.Subscribe(ctx, eventstore.SubscribeOptions{From: start, Filter: filter})
	if err != nil {
		return err
	}
	defer sub.Close()
	if start == eventstore.FromNow {
		fmt.Fprintf(e.stderr, "following %s for new events (Ctrl-C to stop)\n", pos[0])
	} else {
		fmt.Fprintf(e.stderr, "following %s from position %d (Ctrl-C to stop)\n", pos[0], max(start, 1))
	}
	p := newPrinter(e.stdout, *asJSON, true)
	if p.cols, err = eventColumns(ctx, store); err != nil {
		return err
	}
	for ev := range sub.Events() {
		if err := p.print(ev); err != nil {
			return err
		}
	}
	return sub.Err()
}

func cmdStats(ctx context.Context, e *env, args []string) error {
	fs := newFlags("stats")
	asJSON := jsonFlag(fs, "one JSON object instead of a table")
	pos, store, b, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := b.FileStats(ctx)
	if err != nil {
		return err
	}
	consumers, err := store.Consumers(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return jsonLine(e.stdout, statsJSON{
			File: pos[0], Bytes: st.FileBytes, SchemaVersion: st.SchemaVersion,
			Events: st.Events, LastPosition: st.LastPosition, Streams: st.Streams,
			DeletedStreams: st.DeletedStreams, Snapshots: st.Snapshots, Consumers: len(consumers),
			FirstEvent: jsonTime(st.FirstEvent), LastEvent: jsonTime(st.LastEvent),
			FreeBytes: st.FreeBytes, IncrementalVacuum: st.IncrementalVacuum,
		})
	}
	tw := newTable(e.stdout)
	fmt.Fprintf(tw, "file\t%s\n", pos[0])
	fmt.Fprintf(tw, "size\t%s\n", bytesize(st.FileBytes))
	free := bytesize(st.FreeBytes) + " (prune gives it back)"
	if !st.IncrementalVacuum {
		free = bytesize(st.FreeBytes) + " (reused; run 'eventstore vacuum' once so that prune gives it back)"
	}
	fmt.Fprintf(tw, "free in the file\t%s\n", free)
	fmt.Fprintf(tw, "schema version\t%d\n", st.SchemaVersion)
	fmt.Fprintf(tw, "events\t%d\n", st.Events)
	fmt.Fprintf(tw, "last position\t%d\n", st.LastPosition)
	fmt.Fprintf(tw, "streams\t%d\n", st.Streams)
	fmt.Fprintf(tw, "deleted or purged streams\t%d\n", st.DeletedStreams)
	fmt.Fprintf(tw, "snapshots\t%d\n", st.Snapshots)
	fmt.Fprintf(tw, "consumers and forwarders\t%d\n", len(consumers))
	if !st.FirstEvent.IsZero() {
		fmt.Fprintf(tw, "first event\t%s\n", stamp(st.FirstEvent))
		fmt.Fprintf(tw, "last event\t%s\n", stamp(st.LastEvent))
	}
	return tw.Flush()
}

type statsJSON struct {
	File              string     `json:"file"`
	Bytes             int64      `json:"bytes"`
	SchemaVersion     int        `json:"schema_version"`
	Events            int64      `json:"events"`
	LastPosition      int64      `json:"last_position"`
	Streams           int64      `json:"streams"`
	DeletedStreams    int64      `json:"deleted_streams"`
	Snapshots         int64      `json:"snapshots"`
	Consumers         int        `json:"consumers"`
	FirstEvent        *time.Time `json:"first_event"`
	LastEvent         *time.Time `json:"last_event"`
	FreeBytes         int64      `json:"free_bytes"`         // room of removed events in the file
	IncrementalVacuum bool       `json:"incremental_vacuum"` // prune can give it back
}

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags("verify")
	asJSON := jsonFlag(fs, "one JSON object instead of text")
	_, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	r, verr := store.Verify(ctx)
	took := time.Since(start).Round(time.Millisecond)
	if *asJSON {
		// Lists are [] when empty, never null.
		out := verifyJSON{OK: r.OK(), Integrity: r.Integrity, Events: r.Events, Streams: r.Streams,
			Snapshots: r.Snapshots, Checkpoints: r.Checkpoints,
			Checked:  append([]eventstore.VerifyCheck{}, r.Checked...),
			Skipped:  append([]string{}, r.Skipped...),
			Problems: append([]string{}, r.Problems...), Millis: took.Milliseconds()}
		if verr != nil {
			out.Error = verr.Error()
		}
		if err := jsonLine(e.stdout, out); err != nil {
			return err
		}
	} else {
		printVerify(e.stdout, r, took)
	}
	switch {
	case verr != nil:
		return verr
	case !r.OK():
		return fmt.Errorf("%d problems", len(r.Problems))
	}
	return nil
}

// printVerify prints a report as text, whether or not Verify finished.
func printVerify(w io.Writer, r eventstore.VerifyReport, took time.Duration) {
	checked := "none"
	if len(r.Checked) > 0 {
		checked = fmt.Sprint(r.Checked)
		checked = checked[1 : len(checked)-1]
	}
	fmt.Fprintf(w, "checked: %s\n", checked)
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "skipped: %s\n", s)
	}
	if r.Integrity != "" {
		fmt.Fprintf(w, "integrity: %s\n", r.Integrity)
	}
	fmt.Fprintf(w, "events: %d, streams: %d, snapshots: %d, checkpoints: %d (in %v)\n",
		r.Events, r.Streams, r.Snapshots, r.Checkpoints, took)
	for _, p := range r.Problems {
		fmt.Fprintln(w, "problem:", p)
	}
	if r.OK() {
		fmt.Fprintln(w, "ok")
	}
}

type verifyJSON struct {
	OK          bool                     `json:"ok"`
	Error       string                   `json:"error,omitempty"` // a check could not run
	Integrity   string                   `json:"integrity"`
	Events      int64                    `json:"events"`
	Streams     int                      `json:"streams"`
	Snapshots   int                      `json:"snapshots"`
	Checkpoints int                      `json:"checkpoints"`
	Checked     []eventstore.VerifyCheck `json:"checked"`
	Skipped     []string                 `json:"skipped"`
	Problems    []string                 `json:"problems"`
	Millis      int64                    `json:"millis"`
}

func cmdSnapshots(ctx context.Context, e *env, args []string) error {
	fs := newFlags("snapshots")
	asJSON := jsonFlag(fs, "one JSON object per snapshot and line instead of a table")
	pos, store, _, err := openArgs(e, fs, args, 2)
	if err != nil {
		return err
	}
	defer store.Close()
	snaps, err := store.ListSnapshots(ctx, pos[1])
	if err != nil {
		return err
	}
	if *asJSON {
		for _, s := range snaps {
			if err := jsonLine(e.stdout, snapshotJSON{pos[1], s.Version, jsonTime(s.CreatedAt), len(s.Data)}); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "VERSION\tCREATED\tBYTES")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%d\t%s\t%d\n", s.Version, stamp(s.CreatedAt), len(s.Data))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d snapshots\n", len(snaps))
	return nil
}

type snapshotJSON struct {
	Stream    string     `json:"stream"`
	Version   int64      `json:"version"`
	CreatedAt *time.Time `json:"created_at"`
	Bytes     int        `json:"bytes"`
}

func cmdConsumers(ctx context.Context, e *env, args []string) error {
	fs := newFlags("consumers")
	asJSON := jsonFlag(fs, "one JSON object per consumer and line instead of a table")
	_, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	infos, err := store.Consumers(ctx)
	if err != nil {
		return err
	}
	tw := newTable(e.stdout)
	if !*asJSON {
		fmt.Fprintln(tw, "CONSUMER\tPOSITION\tLAG\tPARKED\tUPDATED")
	}
	for _, c := range infos {
		parked, err := store.Parked(ctx, c.Key)
		if err != nil {
			return err
		}
		if *asJSON {
			if err := jsonLine(e.stdout, consumerJSON{c.Key, c.Position, c.Lag, len(parked), jsonTime(c.UpdatedAt)}); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", c.Key, c.Position, c.Lag, len(parked), stamp(c.UpdatedAt))
	}
	if *asJSON {
		return nil
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d consumers\n", len(infos))
	return nil
}

type consumerJSON struct {
	Consumer  string     `json:"consumer"`
	Position  int64      `json:"position"`
	Lag       int64      `json:"lag"`
	Parked    int        `json:"parked"`
	UpdatedAt *time.Time `json:"updated_at"`
}

func cmdBackup(ctx context.Context, e *env, args []string) error {
	fs := newFlags("backup")
	pos, store, b, err := openArgs(e, fs, args, 2)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	if err := b.Backup(ctx, pos[1]); err != nil {
		return err
	}
	fi, err := os.Stat(pos[1])
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "backed up %s to %s (%s) in %v\n", pos[0], pos[1], bytesize(fi.Size()), time.Since(start).Round(time.Millisecond))
	return nil
}

// printer prints events as a table or as JSON lines.
type printer struct {
	json bool
	live bool // tail: print each event as it comes
	w    io.Writer
	tw   *tabwriter.Writer // read's table, aligned at the end
	cols liveColumns       // tail's table, aligned as it goes
	head bool
}

func newPrinter(w io.Writer, asJSON, live bool) *printer {
	return &printer{json: asJSON, live: live, w: w, tw: newTable(w)}
}

var eventHeader = []string{"POSITION", "STREAM", "VERSION", "TIME", "TYPE", "DATA"}

func (p *printer) print(ev eventstore.RecordedEvent) error {
	if p.json { // the export's event lines
		_, err := p.w.Write(appendEvent(nil, ev))
		return err
	}
	data := string(ev.Data)
	if len(data) > 120 {
		data = data[:117] + "..."
	}
	row := []string{fmt.Sprint(ev.Position), ev.StreamID, fmt.Sprint(ev.Version), stamp(ev.RecordedAt), ev.Type, data}
	if p.live {
		if !p.head {
			p.head = true
			if _, err := io.WriteString(p.w, p.cols.line(eventHeader)); err != nil {
				return err
			}
		}
		_, err := io.WriteString(p.w, p.cols.line(row))
		return err
	}
	if !p.head {
		p.head = true
		fmt.Fprintln(p.tw, strings.Join(eventHeader, "\t"))
	}
	fmt.Fprintln(p.tw, strings.Join(row, "\t"))
	return nil
}

func (p *printer) flush() error {
	if p.json {
		return nil
	}
	return p.tw.Flush()
}

// liveColumns aligns a table printed a line at a time, whose later lines
// are not known yet: its columns have widths fixed at the start, and a
// cell that is wider is cut, ending in "…" (-json prints it whole). The
// last column is neither padded nor cut.
type liveColumns struct {
	widths []int
	cut    []bool // whether a column's cells may be cut (text, not numbers)
}

// eventColumns returns the columns of tail's table: a position as wide as
// the last one now with room to grow, the longest stream ID among the
// first streams (between 16 and 64 characters), a version of 7 digits, a
// time, a type of 24 characters.
func eventColumns(ctx context.Context, store *eventstore.Store) (liveColumns, error) {
	last := int64(0)
	for ev, err := range store.ReadAll(ctx, eventstore.ReadOptions{Backward: true, Limit: 1}, eventstore.Filter{}) {
		if err != nil {
			return liveColumns{}, err
		}
		last = ev.Position
	}
	stream := 16
	for info, err := range store.ListStreams(ctx, eventstore.ListOptions{Limit: 10_000}) {
		if err != nil {
			return liveColumns{}, err
		}
		stream = max(stream, utf8.RuneCountInString(info.ID))
	}
	return liveColumns{
		widths: []int{max(8, len(fmt.Sprint(last))+2), min(stream, 64), 7, len(stamp(time.Now())), 24},
		cut:    []bool{false, true, false, false, true},
	}, nil
}

func (c *liveColumns) line(cells []string) string {
	var b strings.Builder
	for i, cell := range cells {
		if i == len(cells)-1 {
			b.WriteString(cell)
			break
		}
		n := utf8.RuneCountInString(cell)
		if w := c.widths[i]; n > w && c.cut[i] {
			cell = string([]rune(cell)[:w-1]) + "…"
			n = w
		}
		b.WriteString(cell)
		b.WriteString(strings.Repeat(" ", max(c.widths[i]-n, 0)+2))
	}
	b.WriteByte('\n')
	return b.String()
}

// stamp formats a time for a table: local time with the zone's offset.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000 -07:00")
}

func bytesize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// firstErr returns the first error that is not nil.
func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
