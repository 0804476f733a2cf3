package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
)

// errHelp reports that -h was asked for and printed.
var errHelp = errors.New("help shown")

// parse parses a command's flags and checks it got want positional
// arguments.
func parse(e *env, fs *flag.FlagSet, args []string, want int) ([]string, error) {
	fs.SetOutput(e.stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, errUsage
	}
	if fs.NArg() != want {
		return nil, errUsage
	}
	return fs.Args(), nil
}

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

func cmdStreams(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("streams", flag.ContinueOnError)
	var opts eventstore.ListOptions
	fs.StringVar(&opts.Prefix, "prefix", "", "only stream IDs starting with this")
	fs.StringVar(&opts.Category, "category", "", "only streams of this category")
	fs.StringVar(&opts.After, "after", "", "only stream IDs after this one (paging)")
	fs.IntVar(&opts.Limit, "limit", 0, "at most this many streams (0: all)")
	_, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tVERSION\tEVENTS\tCREATED\tUPDATED")
	n := 0
	for info, err := range store.ListStreams(ctx, opts) {
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", info.ID, info.Version, info.Version+1, stamp(info.CreatedAt), stamp(info.UpdatedAt))
		n++
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d streams\n", n)
	return nil
}

func cmdRead(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	var opts eventstore.ReadOptions
	fs.Int64Var(&opts.From, "from", 0, "first version (backward: 0 is the end)")
	fs.IntVar(&opts.Limit, "limit", 0, "at most this many events (0: all)")
	fs.BoolVar(&opts.Backward, "backward", false, "newest first")
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	pos, store, _, err := openArgs(e, fs, args, 2)
	if err != nil {
		return err
	}
	defer store.Close()
	p := newPrinter(e.stdout, *asJSON)
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
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	from := fs.Int64("from", 0, "first global position (default: only new events)")
	everything := fs.Bool("all", false, "start at the beginning of the log")
	stream := fs.String("stream", "", "only this stream")
	category := fs.String("category", "", "only this category")
	typ := fs.String("type", "", "only this event type")
	asJSON := fs.Bool("json", false, "one JSON object per line")
	pos, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
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
	case *from > 0:
		start = *from
	}
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
	p := newPrinter(e.stdout, *asJSON)
	p.stream = true
	for ev := range sub.Events() {
		if err := p.print(ev); err != nil {
			return err
		}
	}
	return sub.Err()
}

func cmdStats(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
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
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s\n", pos[0])
	fmt.Fprintf(tw, "size\t%s\n", bytesize(st.FileBytes))
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

func cmdVerify(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	_, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	start := time.Now()
	r, err := store.Verify(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "integrity: %s\nevents: %d, streams: %d, snapshots: %d (checked in %v)\n",
		r.Integrity, r.Events, r.Streams, r.Snapshots, time.Since(start).Round(time.Millisecond))
	if r.OK() {
		fmt.Fprintln(e.stdout, "ok")
		return nil
	}
	for _, p := range r.Problems {
		fmt.Fprintln(e.stdout, "problem:", p)
	}
	return fmt.Errorf("%d problems", len(r.Problems))
}

func cmdSnapshots(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("snapshots", flag.ContinueOnError)
	pos, store, _, err := openArgs(e, fs, args, 2)
	if err != nil {
		return err
	}
	defer store.Close()
	snaps, err := store.ListSnapshots(ctx, pos[1])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCREATED\tBYTES")
	for _, s := range snaps {
		fmt.Fprintf(tw, "%d\t%s\t%d\n", s.Version, stamp(s.CreatedAt), len(s.Data))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d snapshots\n", len(snaps))
	return nil
}

func cmdConsumers(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("consumers", flag.ContinueOnError)
	_, store, _, err := openArgs(e, fs, args, 1)
	if err != nil {
		return err
	}
	defer store.Close()
	infos, err := store.Consumers(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONSUMER\tPOSITION\tLAG\tUPDATED")
	for _, c := range infos {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", c.Key, c.Position, c.Lag, stamp(c.UpdatedAt))
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d consumers\n", len(infos))
	return nil
}

func cmdBackup(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("backup", flag.ContinueOnError)
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
	json   bool
	stream bool // flush after every event
	tw     *tabwriter.Writer
	w      io.Writer
	header bool
}

func newPrinter(w io.Writer, asJSON bool) *printer {
	return &printer{json: asJSON, w: w, tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
}

func (p *printer) print(ev eventstore.RecordedEvent) error {
	if p.json { // the export's event lines
		_, err := p.w.Write(appendEvent(nil, ev))
		return err
	}
	if !p.header && !p.stream {
		fmt.Fprintln(p.tw, "POSITION\tSTREAM\tVERSION\tTIME\tTYPE\tDATA")
		p.header = true
	}
	data := string(ev.Data)
	if len(data) > 120 {
		data = data[:117] + "..."
	}
	fmt.Fprintf(p.tw, "%d\t%s\t%d\t%s\t%s\t%s\n", ev.Position, ev.StreamID, ev.Version, stamp(ev.RecordedAt), ev.Type, data)
	if p.stream {
		return p.tw.Flush()
	}
	return nil
}

func (p *printer) flush() error {
	if p.json {
		return nil
	}
	return p.tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000")
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

// progress draws a progress bar on stderr when it is a terminal.
type progress struct {
	e     *env
	verb  string
	total int64
	last  time.Time
}

func newProgress(e *env, verb string, total int64) *progress {
	return &progress{e: e, verb: verb, total: total}
}

func (p *progress) tick(n int64) {
	if !p.e.progress || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw(n)
}

func (p *progress) draw(n int64) {
	if p.total <= 0 {
		fmt.Fprintf(p.e.stderr, "\r%s %d events", p.verb, n)
		return
	}
	const width = 30
	filled := int(float64(width) * float64(min(n, p.total)) / float64(p.total))
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = '.'
		if i < filled {
			bar[i] = '#'
		}
	}
	fmt.Fprintf(p.e.stderr, "\r[%s] %s %d/%d events", bar, p.verb, n, p.total)
}

func (p *progress) done(n int64) {
	if p.e.progress {
		p.draw(n)
		fmt.Fprintln(p.e.stderr)
	}
}

// countLines counts the lines of a file, for the progress bar; 0 when it
// cannot.
func countLines(path string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := f.Read(buf)
		for _, c := range buf[:k] {
			if c == '\n' {
				n++
			}
		}
		if err != nil {
			return n
		}
	}
}
