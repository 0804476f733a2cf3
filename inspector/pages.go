package inspector

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/edge-es/eventstore/sqlite"
	"github.com/google/uuid"
)

// page is what every template gets: the store's title, the page's name
// for the navigation, and the page's own data.
type page struct {
	Title string
	Page  string
	Data  any
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	t := h.pages[name]
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", page{Title: h.opts.Title, Page: name, Data: data}); err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method == http.MethodHead {
		return
	}
	w.Write([]byte(b.String()))
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, eventstore.ErrInvalidArgument) || errors.Is(err, errBadParam) {
		code = http.StatusBadRequest
	} else if errors.Is(err, errNotFound) {
		code = http.StatusNotFound
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method == http.MethodHead {
		return
	}
	h.pages["error"].ExecuteTemplate(w, "layout", page{Title: h.opts.Title, Page: "error", Data: err.Error()})
}

var (
	errBadParam = errors.New("bad parameter")
	errNotFound = errors.New("not found")
)

// int64Param reads a non-negative integer parameter, def when absent.
func int64Param(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errorf("%s %q: want a number >= 0", name, s)
	}
	return n, nil
}

func errorf(format string, args ...any) error {
	return &paramError{msg: fmt.Sprintf(format, args...)}
}

type paramError struct{ msg string }

func (e *paramError) Error() string { return e.msg }
func (e *paramError) Is(t error) bool {
	return t == errBadParam
}

// --- overview

type overviewData struct {
	File       *sqlite.FileStats
	FileErr    string
	Last       *eventView
	Chart      chart
	Stats      eventstore.Stats
	Forwarders []forwarderView
	Consumers  int
}

type forwarderView struct {
	Name string
	eventstore.ForwarderStatus
	Lag     time.Duration
	LastErr string
}

func (h *handler) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d overviewData
	if h.opts.SQLite != nil {
		st, err := h.opts.SQLite.FileStats(ctx)
		if err != nil {
			d.FileErr = err.Error()
		} else {
			d.File = &st
		}
	}
	now := h.opts.Clock()
	last, err := h.lastEvent(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if last != nil {
		d.Last = view(*last)
	}
	if d.Chart, err = h.appendRate(ctx, last, now); err != nil {
		h.fail(w, r, err)
		return
	}
	d.Stats = h.store.Stats()
	for name, f := range h.opts.Forwarders {
		st := f.Status()
		fv := forwarderView{Name: name, ForwarderStatus: st, Lag: st.Lag(now).Round(time.Millisecond)}
		if st.LastError != nil {
			fv.LastErr = st.LastError.Error()
		}
		d.Forwarders = append(d.Forwarders, fv)
	}
	sortBy(d.Forwarders, func(f forwarderView) string { return f.Name })
	cs, err := h.store.Consumers(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d.Consumers = len(cs)
	h.render(w, r, "overview", d)
}

// lastEvent is the newest event of the log, nil when it is empty.
func (h *handler) lastEvent(ctx context.Context) (*eventstore.RecordedEvent, error) {
	for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{Backward: true, Limit: 1}, eventstore.Filter{}) {
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	return nil, nil
}

// firstAtOrAfter is the position of the first event recorded at or after
// t, and that event; last+1 and the zero event when there is none. A
// binary search over positions, a point read each step, so it costs the
// same on any size of log.
func (h *handler) firstAtOrAfter(ctx context.Context, t time.Time, last int64) (int64, eventstore.RecordedEvent, error) {
	lo, hi := int64(1), last+1
	var at eventstore.RecordedEvent
	for lo < hi {
		mid := lo + (hi-lo)/2
		var found *eventstore.RecordedEvent
		for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{From: mid, Limit: 1}, eventstore.Filter{}) {
			if err != nil {
				return 0, at, err
			}
			found = &e
		}
		switch {
		case found == nil:
			hi = mid
		case found.RecordedAt.Before(t):
			lo = found.Position + 1
		default:
			hi, at = mid, *found
		}
	}
	if at.Position != lo {
		// lo ended on a gap, or past the event found: read what is there.
		at = eventstore.RecordedEvent{}
		for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{From: lo, Limit: 1}, eventstore.Filter{}) {
			if err != nil {
				return 0, at, err
			}
			at = e
		}
	}
	return lo, at, nil
}

// --- streams

type streamsData struct {
	Prefix, Category string
	Streams          []eventstore.StreamInfo
	Next             string // After of the next page, "" on the last
	After            string
}

func (h *handler) streams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d := streamsData{Prefix: q.Get("prefix"), Category: q.Get("category"), After: q.Get("after")}
	opts := eventstore.ListOptions{Prefix: d.Prefix, Category: d.Category, After: d.After, Limit: h.opts.PageSize + 1}
	for s, err := range h.store.ListStreams(r.Context(), opts) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		d.Streams = append(d.Streams, s)
	}
	if len(d.Streams) > h.opts.PageSize {
		d.Streams = d.Streams[:h.opts.PageSize]
		d.Next = d.Streams[len(d.Streams)-1].ID
	}
	h.render(w, r, "streams", d)
}

// --- stream

type streamData struct {
	ID        string
	Version   int64
	Events    []*eventView
	Backward  bool
	Older     int64 // From of the page of older events; -1: none
	Newer     int64 // From of the page of newer events; -1: none
	Snapshots []snapshotView
	SnapErr   string
}

func (h *handler) stream(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := streamData{ID: q.Get("id"), Backward: q.Get("dir") == "back", Older: -1, Newer: -1}
	if err := eventstore.ValidateStreamID(d.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	v, err := h.store.StreamVersion(ctx, d.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	d.Version = v
	if v < 0 {
		h.fail(w, r, errorNotFound("stream %q does not exist", d.ID))
		return
	}
	from, err := int64Param(r, "from", 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for e, err := range h.store.ReadStream(ctx, d.ID, eventstore.ReadOptions{From: from, Backward: d.Backward, Limit: h.opts.PageSize}) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		d.Events = append(d.Events, view(e))
	}
	if n := len(d.Events); n > 0 {
		lo, hi := d.Events[0].Version, d.Events[n-1].Version
		if d.Backward {
			lo, hi = hi, lo
		}
		if lo > 0 {
			d.Older = lo - 1
		}
		if hi < v {
			d.Newer = hi + 1
		}
	}
	snaps, err := h.store.ListSnapshots(ctx, d.ID)
	switch {
	case err != nil:
		d.SnapErr = err.Error()
	default:
		for _, s := range snaps {
			d.Snapshots = append(d.Snapshots, snapshotView{Snapshot: s, Data: formatPayload(s.Data), Metadata: formatPayload(s.Metadata)})
		}
	}
	h.render(w, r, "stream", d)
}

func errorNotFound(format string, args ...any) error {
	return &notFoundError{fmt.Sprintf(format, args...)}
}

type notFoundError struct{ msg string }

func (e *notFoundError) Error() string   { return e.msg }
func (e *notFoundError) Is(t error) bool { return t == errNotFound }

// --- event

func (h *handler) event(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	var found *eventstore.RecordedEvent
	if s := q.Get("id"); s != "" {
		id, err := uuid.Parse(s)
		if err != nil {
			h.fail(w, r, errorf("id %q: not a UUID", s))
			return
		}
		if found, err = h.eventByID(ctx, id); err != nil {
			h.fail(w, r, err)
			return
		}
	} else {
		pos, err := int64Param(r, "pos", 0)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{From: pos, Limit: 1}, eventstore.Filter{}) {
			if err != nil {
				h.fail(w, r, err)
				return
			}
			if e.Position == pos {
				found = &e
			}
		}
	}
	if found == nil {
		h.fail(w, r, errorNotFound("no such event"))
		return
	}
	h.render(w, r, "event", view(*found))
}

// eventByID finds an event by its ID. A UUIDv7, which the store assigns,
// carries the time it was made, close to when the event was recorded: the
// search reads the log from a second before that time to a second after.
// Any other ID, or one not found there, costs a scan of the whole log.
func (h *handler) eventByID(ctx context.Context, id uuid.UUID) (*eventstore.RecordedEvent, error) {
	match := eventstore.Filter{Match: func(e eventstore.RecordedEvent) bool { return e.ID == id }}
	from := int64(0)
	if id.Version() == 7 {
		sec, nsec := id.Time().UnixTime()
		at := time.Unix(sec, nsec)
		last, err := h.lastEvent(ctx)
		if err != nil || last == nil {
			return nil, err
		}
		if from, _, err = h.firstAtOrAfter(ctx, at.Add(-time.Second), last.Position); err != nil {
			return nil, err
		}
		for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{From: from}, eventstore.Filter{}) {
			if err != nil {
				return nil, err
			}
			if e.ID == id {
				return &e, nil
			}
			if e.RecordedAt.After(at.Add(time.Second)) {
				break
			}
		}
	}
	for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{}, match) {
		if err != nil {
			return nil, err
		}
		return &e, nil
	}
	return nil, nil
}

// --- log

type logData struct {
	Category, Type, Glob string
	From                 string
	Backward             bool
	Events               []*eventView
	Older, Newer         int64 // From of the neighbouring pages; -1: none
}

func (h *handler) log(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	d := logData{Category: q.Get("category"), Type: q.Get("type"), Glob: q.Get("glob"), From: q.Get("from"), Older: -1, Newer: -1}
	from, err := int64Param(r, "from", 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// Without a position, the newest events first; with one, forward from
	// there unless asked otherwise.
	d.Backward = q.Get("dir") == "back" || d.From == ""
	var f eventstore.Filter
	if d.Category != "" {
		f.Categories = []string{d.Category}
	}
	if d.Type != "" {
		f.Types = []string{d.Type}
	}
	f.StreamGlob = d.Glob
	for e, err := range h.store.ReadAll(ctx, eventstore.ReadOptions{From: from, Backward: d.Backward, Limit: h.opts.PageSize}, f) {
		if err != nil {
			h.fail(w, r, err)
			return
		}
		d.Events = append(d.Events, view(e))
	}
	if n := len(d.Events); n > 0 {
		lo, hi := d.Events[0].Position, d.Events[n-1].Position
		if d.Backward {
			lo, hi = hi, lo
		}
		if lo > 1 {
			d.Older = lo - 1
		}
		d.Newer = hi + 1
	} else if from > 1 && !d.Backward {
		d.Older = from - 1
	}
	h.render(w, r, "log", d)
}

// --- consumers

type consumerView struct {
	eventstore.ConsumerInfo
	Parked    []eventstore.ParkedEvent
	ParkedErr string
}

type consumersData struct {
	Consumers    []consumerView
	Forwarders   []forwarderView
	LastPosition int64
}

func (h *handler) consumers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var d consumersData
	cs, err := h.store.Consumers(ctx)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	for _, c := range cs {
		cv := consumerView{ConsumerInfo: c}
		p, err := h.store.Parked(ctx, c.Key)
		if err != nil {
			cv.ParkedErr = err.Error()
		}
		cv.Parked = p
		d.Consumers = append(d.Consumers, cv)
	}
	now := h.opts.Clock()
	for name, f := range h.opts.Forwarders {
		st := f.Status()
		fv := forwarderView{Name: name, ForwarderStatus: st, Lag: st.Lag(now).Round(time.Millisecond)}
		if st.LastError != nil {
			fv.LastErr = st.LastError.Error()
		}
		d.Forwarders = append(d.Forwarders, fv)
	}
	sortBy(d.Forwarders, func(f forwarderView) string { return f.Name })
	h.render(w, r, "consumers", d)
}

// --- verify

type verifyData struct {
	Ran    bool
	Report eventstore.VerifyReport
	OK     bool
	Err    string
	Took   time.Duration
}

func (h *handler) verify(w http.ResponseWriter, r *http.Request) {
	var d verifyData
	if r.URL.Query().Get("run") != "" {
		start := time.Now()
		rep, err := h.store.Verify(r.Context())
		d.Ran, d.Report, d.OK, d.Took = true, rep, rep.OK(), time.Since(start).Round(time.Millisecond)
		if err != nil {
			d.Err = err.Error()
		}
	}
	h.render(w, r, "verify", d)
}
