package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
)

// retentionAbout is the -h text of the retention command on what it does.
const retentionAbout = `Without STREAM or -category it lists every policy stored. With STREAM and
no setting flag it shows the policy that applies to the stream: its own, or
else its category's. With -category and no setting flag, the category's.

A setting flag (-max-age, -max-count, -truncate-before) sets the policy of
STREAM or of -category C as a whole: a limit not given is not limited, and
-clear removes it. A stream's own policy overrides its category's. Expired
events disappear from the stream's reads at once; 'eventstore prune'
removes them from the file.`

func cmdRetention(ctx context.Context, e *env, args []string) error {
	fs := newFlags("retention")
	category := fs.String("category", "", "the category `C` whose policy to show or set, instead of a stream")
	maxAge := fs.String("max-age", "", "expire the events recorded longer ago than `AGE` (30d, 12h, 1d12h)")
	maxCount := fs.Int64("max-count", 0, "keep only the newest `N` events of each stream")
	truncate := fs.Int64("truncate-before", 0, "expire the versions below `V`")
	remove := fs.Bool("clear", false, "remove the policy of STREAM or of -category")
	asJSON := jsonFlag(fs, "JSON Lines instead of a table")
	pos, err := interleaved(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		help(e.stdout, fs)
		return errHelp
	case err != nil:
		return usagef("%v", err)
	case len(pos) == 0:
		return usagef("0 arguments, want FILE [STREAM]")
	case len(pos) > 2:
		return usagef("unexpected argument %q", pos[2])
	case len(pos) == 2 && *category != "":
		return usagef("both a stream (%s) and -category: want one", pos[1])
	}
	if err := firstErr(nonNegative("max-count", *maxCount), nonNegative("truncate-before", *truncate)); err != nil {
		return err
	}
	setting := isSet(fs, "max-age") || isSet(fs, "max-count") || isSet(fs, "truncate-before")
	var r eventstore.Retention
	if r.MaxAge, err = parseAge(*maxAge); err != nil {
		return err
	}
	r.MaxCount, r.TruncateBefore = *maxCount, *truncate
	stream := ""
	if len(pos) == 2 {
		stream = pos[1]
	}
	switch {
	case *remove && setting:
		return usagef("-clear and a setting flag: want one")
	case (*remove || setting) && stream == "" && *category == "":
		return usagef("a policy is set on a STREAM or a -category C")
	case *remove || setting:
		return setRetention(ctx, e, pos[0], stream, *category, r)
	}

	store, _, err := open(pos[0], false)
	if err != nil {
		return err
	}
	defer store.Close()
	policies, err := store.Retentions(ctx)
	if err != nil {
		return err
	}
	var rows []eventstore.RetentionPolicy
	switch {
	case stream != "":
		r, err := store.Retention(ctx, stream)
		if err != nil {
			return err
		}
		from := eventstore.RetentionPolicy{Stream: stream, Retention: r} // its own
		if !ownPolicy(policies, stream) {
			from = eventstore.RetentionPolicy{Category: eventstore.Category(stream), Retention: r}
		}
		if r.IsZero() {
			if *asJSON {
				return jsonLine(e.stdout, retentionJSON{Stream: stream})
			}
			fmt.Fprintf(e.stdout, "%s keeps every event: no policy of its own, nor of category %s\n", stream, eventstore.Category(stream))
			return nil
		}
		rows = []eventstore.RetentionPolicy{from}
	case *category != "":
		for _, p := range policies {
			if p.Category == *category {
				rows = append(rows, p)
			}
		}
		if len(rows) == 0 && !*asJSON {
			fmt.Fprintf(e.stdout, "category %s has no policy: its streams keep every event unless they have their own\n", *category)
			return nil
		}
	default:
		rows = policies
		if len(rows) == 0 && !*asJSON {
			fmt.Fprintln(e.stdout, "no retention policies: every event is kept")
			return nil
		}
	}
	if *asJSON {
		for _, p := range rows {
			if err := jsonLine(e.stdout, toRetentionJSON(p, stream)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "POLICY OF\tMAX-AGE\tMAX-COUNT\tTRUNCATE-BEFORE")
	for _, p := range rows {
		of := "stream " + p.Stream
		if p.Category != "" {
			of = "category " + p.Category
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", of, formatAge(p.Retention.MaxAge), dash(p.Retention.MaxCount), dash(p.Retention.TruncateBefore))
	}
	return tw.Flush()
}

// setRetention sets (or, with the zero r, removes) the policy of stream or
// category and says what it did.
func setRetention(ctx context.Context, e *env, path, stream, category string, r eventstore.Retention) error {
	store, _, err := open(path, true)
	if err != nil {
		return err
	}
	defer store.Close()
	of := "stream " + stream
	if category != "" {
		of = "category " + category
		err = store.SetCategoryRetention(ctx, category, r)
	} else {
		err = store.SetRetention(ctx, stream, r)
	}
	if err != nil {
		return err
	}
	if r.IsZero() {
		fmt.Fprintf(e.stdout, "removed the retention policy of %s\n", of)
		return nil
	}
	fmt.Fprintf(e.stdout, "set the retention policy of %s: max-age %s, max-count %s, truncate-before %s\n"+
		"Expired events no longer read in their streams; 'eventstore prune %s' removes them from the file.\n",
		of, formatAge(r.MaxAge), dash(r.MaxCount), dash(r.TruncateBefore), path)
	return store.Close()
}

func ownPolicy(policies []eventstore.RetentionPolicy, stream string) bool {
	for _, p := range policies {
		if p.Stream == stream {
			return true
		}
	}
	return false
}

type retentionJSON struct {
	Stream         string `json:"stream,omitempty"`   // the stream asked about, or whose policy it is
	Category       string `json:"category,omitempty"` // the category whose policy it is
	MaxAge         string `json:"max_age,omitempty"`  // a Go duration
	MaxCount       int64  `json:"max_count,omitempty"`
	TruncateBefore int64  `json:"truncate_before,omitempty"`
}

func toRetentionJSON(p eventstore.RetentionPolicy, stream string) retentionJSON {
	j := retentionJSON{Stream: p.Stream, Category: p.Category, MaxCount: p.Retention.MaxCount, TruncateBefore: p.Retention.TruncateBefore}
	if stream != "" {
		j.Stream = stream
	}
	if p.Retention.MaxAge > 0 {
		j.MaxAge = p.Retention.MaxAge.String()
	}
	return j
}

// parseAge parses a -max-age: a Go duration, which may start with a number
// of days ("30d", "1d12h"). "" is 0.
func parseAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var days time.Duration
	rest := s
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseInt(s[:i], 10, 32)
		if err != nil {
			return 0, usagef("-max-age %q: want a duration such as 30d, 12h or 1d12h", s)
		}
		days, rest = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil {
			return 0, usagef("-max-age %q: want a duration such as 30d, 12h or 1d12h", s)
		}
	}
	if d+days < 0 {
		return 0, usagef("-max-age %q: must be 0 or more", s)
	}
	return days + d, nil
}

// formatAge prints a MaxAge in days and the rest: 30d, 1d12h, 90m; "-" for
// none.
func formatAge(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	const day = 24 * time.Hour
	out := ""
	if d >= day {
		out = strconv.FormatInt(int64(d/day), 10) + "d"
		d %= day
	}
	if d > 0 {
		rest := d.String()
		if strings.HasSuffix(rest, "m0s") {
			rest = strings.TrimSuffix(rest, "0s")
		}
		if strings.HasSuffix(rest, "h0m") {
			rest = strings.TrimSuffix(rest, "0m")
		}
		out += rest
	}
	return out
}

func dash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func cmdPrune(ctx context.Context, e *env, args []string) error {
	fs := newFlags("prune")
	after := fs.String("after", "", "the forwarders and consumers `NAMES` (comma-separated) that must have passed an event first")
	batch := fs.Int("batch", eventstore.DefaultPruneBatch, "the most events `N` one write transaction removes")
	pos, err := parse(e, fs, args, 1)
	if err != nil {
		return err
	}
	if *batch < 1 || *batch > eventstore.MaxPruneBatch {
		return usagef("-batch %d: want 1 to %d", *batch, eventstore.MaxPruneBatch)
	}
	var names []string
	for n := range strings.SplitSeq(*after, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	path := pos[0]
	store, b, err := open(path, true)
	if err != nil {
		return err
	}
	defer store.Close()
	policies, err := store.Retentions(ctx)
	if err != nil {
		return err
	}
	if len(policies) == 0 {
		fmt.Fprintf(e.stdout, "no retention policies: nothing expires ('eventstore retention %s STREAM -max-age 30d' sets one)\n", path)
		return nil
	}
	before := fileSize(path)
	prog := newProgress(e, "pruning", "events", 0)
	res, err := store.Prune(ctx, eventstore.PruneOptions{After: names, BatchSize: *batch, Progress: func(r eventstore.PruneResult) {
		prog.set(r.Events)
	}})
	prog.close()
	if errors.Is(err, eventstore.ErrUnknownConsumer) {
		return fmt.Errorf("%w ('eventstore consumers %s' lists them; a forwarder as outbox/NAME, named NAME in -after)", err, path)
	}
	fmt.Fprintf(e.stdout, "pruned %d events of %d streams and %d snapshots in %v\n",
		res.Events, res.Streams, res.Snapshots, res.Duration.Round(time.Millisecond))
	if res.KeptBack > 0 {
		fmt.Fprintf(e.stdout, "kept back %d expired events that %s had not passed yet\n", res.KeptBack, strings.Join(names, ", "))
	}
	if err != nil {
		return err
	}
	if res.Events == 0 {
		return nil
	}
	// Prune has given the space back itself.
	st, err := b.FileStats(ctx)
	if err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "the file: %s before, %s after\n", bytesize(before), bytesize(fileSize(path)))
	if !st.IncrementalVacuum {
		fmt.Fprintf(e.stdout, "The file was made by an earlier release: new events reuse the room, but it does not shrink\n"+
			"until 'eventstore vacuum %s' has converted it, once, with the application stopped.\n", path)
	}
	return nil
}
