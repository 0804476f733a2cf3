package inspector

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

func sortBy[T any](s []T, key func(T) string) {
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
}

// payload is event data or metadata as the pages show it: indented JSON
// when it is valid UTF-8 JSON, a hex dump otherwise.
type payload struct {
	Text  string
	IsHex bool
	Size  int
}

func formatPayload(b []byte) payload {
	if len(b) == 0 {
		return payload{}
	}
	if utf8.Valid(b) && json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			return payload{Text: out.String(), Size: len(b)}
		}
	}
	return payload{Text: hex.Dump(b), IsHex: true, Size: len(b)}
}

// link is a correlation or causation ID found in an event's metadata.
type link struct {
	Name string
	ID   string
}

type eventView struct {
	eventstore.RecordedEvent
	Payload  payload
	Meta     payload
	Links    []link
	Category string
}

func view(e eventstore.RecordedEvent) *eventView {
	return &eventView{RecordedEvent: e, Payload: formatPayload(e.Data), Meta: formatPayload(e.Metadata),
		Links: links(e.Metadata), Category: eventstore.Category(e.StreamID)}
}

// links finds the correlation and causation IDs of metadata that is a
// JSON object: keys such as correlationId, $correlationId and
// correlation_id (any case), whose value is a UUID.
func links(meta []byte) []link {
	if len(meta) == 0 || meta[0] != '{' {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(meta, &m) != nil {
		return nil
	}
	var out []link
	for k, v := range m {
		norm := strings.NewReplacer("$", "", "_", "", "-", "").Replace(strings.ToLower(k))
		if norm != "correlationid" && norm != "causationid" {
			continue
		}
		s, ok := v.(string)
		if !ok {
			continue
		}
		if id, err := uuid.Parse(s); err == nil {
			out = append(out, link{Name: k, ID: id.String()})
		}
	}
	sortBy(out, func(l link) string { return l.Name })
	return out
}

type snapshotView struct {
	eventstore.Snapshot
	Data, Metadata payload
}

// chart is the append rate over the last hour: events per minute, sixty
// bars, drawn as inline SVG.
type chart struct {
	Bars  []bar
	Max   int64
	Total int64
	Since time.Time
}

type bar struct {
	X, Y, H int
	N       int64
	At      string
}

const chartHeight = 60

// appendRate counts the events of each of the last sixty minutes by their
// positions: a binary search for the first position of each minute. It
// counts positions, so events of streams deleted since count too.
func (h *handler) appendRate(ctx context.Context, last *eventstore.RecordedEvent, now time.Time) (chart, error) {
	start := now.Truncate(time.Minute).Add(-59 * time.Minute)
	c := chart{Since: start}
	counts := make([]int64, 60)
	if last != nil && !last.RecordedAt.Before(start) {
		bounds := make([]int64, 61)
		bounds[60] = last.Position + 1
		var next time.Time // when the event at the last bound was recorded
		for i := range 60 {
			at := start.Add(time.Duration(i) * time.Minute)
			switch {
			case at.After(last.RecordedAt):
				bounds[i] = last.Position + 1
			case i > 0 && !next.Before(at):
				// A quiet minute: its first event is the previous one's.
				bounds[i] = bounds[i-1]
			default:
				p, e, err := h.firstAtOrAfter(ctx, at, last.Position)
				if err != nil {
					return c, err
				}
				bounds[i], next = p, e.RecordedAt
			}
		}
		for i := range counts {
			counts[i] = bounds[i+1] - bounds[i]
			c.Total += counts[i]
		}
	}
	c.Max = max(slices.Max(counts), 1)
	for i, n := range counts {
		hgt := int(n * chartHeight / c.Max)
		if n > 0 && hgt == 0 {
			hgt = 1
		}
		c.Bars = append(c.Bars, bar{X: i * 5, Y: chartHeight - hgt, H: hgt, N: n, At: start.Add(time.Duration(i) * time.Minute).UTC().Format("15:04")})
	}
	return c, nil
}

var funcs = template.FuncMap{
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
	"bytes": func(n int64) string {
		switch {
		case n >= 1<<30:
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		case n >= 1<<20:
			return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
		case n >= 1<<10:
			return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
		}
		return fmt.Sprintf("%d B", n)
	},
	"short": func(s string, n int) string {
		if utf8.RuneCountInString(s) <= n {
			return s
		}
		return string([]rune(s)[:n]) + "…"
	},
	"preview": preview,
}

// preview is a payload on one line, shortened: compact JSON, or its size
// when it is not JSON.
func preview(p payload) string {
	if p.IsHex {
		return fmt.Sprintf("%d bytes, not JSON", p.Size)
	}
	var b bytes.Buffer
	if json.Compact(&b, []byte(p.Text)) != nil {
		return ""
	}
	s := b.String()
	if utf8.RuneCountInString(s) > 120 {
		return string([]rune(s)[:120]) + "…"
	}
	return s
}

func parsePages() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, name := range []string{"overview", "streams", "stream", "event", "log", "tail", "consumers", "verify", "error"} {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(assets, "assets/layout.html", "assets/"+name+".html"))
	}
	return pages
}
