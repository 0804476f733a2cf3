package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// TestQueryPlans checks with EXPLAIN QUERY PLAN that reads are index
// lookups: no full scan of the events table and no sort of its rows.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	b, err := Open(filepath.Join(t.TempDir(), "plan.db"), nil)
	is.NoErr(err)
	defer b.Close()
	ctx := context.Background()
	// Statistics as a real store has them, so the planner's choice is the
	// one users get.
	s := eventstore.New(b, nil)
	for i := range 50 {
		_, err := s.Append(ctx, []string{"order-1", "account-2", "user-3"}[i%3], eventstore.Any,
			eventstore.Event{Type: []string{"A", "B", "C", "D"}[i%4]})
		is.NoErr(err)
	}
	_, err = b.writer.Exec("ANALYZE")
	is.NoErr(err)

	all := func(f eventstore.Filter, backward bool) (string, []any) {
		q := buildAllQuery(f, backward)
		return q.sql, q.args(0, 10)
	}
	cases := []struct {
		name  string
		query string
		args  []any
		uses  []string // index names the plan must name
	}{
		{"ReadStreamFirst", sqlReadStreamFirst, []any{"order-1", 0, 10}, []string{"events_stream_version"}},
		{"ReadStreamFirstBackward", sqlReadStreamFirstBack, []any{"order-1", 5, 10}, []string{"events_stream_version"}},
		{"ReadStreamNext", sqlReadStreamNext, []any{"order-1", 0, 5, 10}, []string{"events_stream_version"}},
		{"ReadStreamNextBackward", sqlReadStreamNextBack, []any{"order-1", 0, 5, 10}, []string{"events_stream_version"}},
		{"StreamState", sqlStreamState, []any{"order-1"}, nil},
		{"GroupStates", sqlGroupStates, []any{`["order-1", "user-3"]`}, nil},
	}
	for _, c := range []struct {
		name     string
		filter   eventstore.Filter
		backward bool
		uses     []string
	}{
		{"ReadAll", eventstore.Filter{}, false, nil},
		{"ReadAllBackward", eventstore.Filter{}, true, nil},
		{"ByStream", eventstore.Filter{Streams: []string{"order-1"}}, false, []string{"events_stream_position"}},
		{"ByStreams", eventstore.Filter{Streams: []string{"order-1", "user-3"}}, false, []string{"events_stream_position"}},
		{"ByCategory", eventstore.Filter{Categories: []string{"order"}}, false, []string{"events_category_position"}},
		{"ByCategoryBackward", eventstore.Filter{Categories: []string{"order"}}, true, []string{"events_category_position"}},
		{"ByCategories", eventstore.Filter{Categories: []string{"order", "user"}}, false, []string{"events_category_position"}},
		{"ByType", eventstore.Filter{Types: []string{"A"}}, false, []string{"events_type_position"}},
		{"ByTypes", eventstore.Filter{Types: []string{"A", "B", "C"}}, false, []string{"events_type_position"}},
		{"ByCategoryAndType", eventstore.Filter{Categories: []string{"order"}, Types: []string{"A"}}, false, []string{"events_category_position"}},
		{"ByGlob", eventstore.Filter{StreamGlob: "order-*"}, false, []string{"events_category_position"}},
		// A field too long for SQL is matched in Go; another field drives.
		{"HugeStreamsByType", eventstore.Filter{Streams: many("s-", 40_000), Types: []string{"A"}}, false, []string{"events_type_position"}},
		{"HugeCategoriesByGlob", eventstore.Filter{Categories: many("c", 40_000), StreamGlob: "order-*"}, false, []string{"events_category_position"}},
		{"HugeEverything", eventstore.Filter{Streams: many("s-", 40_000), Categories: many("c", 40_000), Types: many("T", 40_000)}, true, nil},
		// The longest lists SQL takes, in every arm of the longest union:
		// still within SQLite's limit on variables.
		{"LongestPushdown", eventstore.Filter{Streams: many("s-", maxUnion), Categories: many("c", maxPushdown), Types: many("T", maxPushdown), StreamGlob: "s-*"}, false, []string{"events_stream_position"}},
	} {
		q, args := all(c.filter, c.backward)
		cases = append(cases, struct {
			name  string
			query string
			args  []any
			uses  []string
		}{c.name, q, args, c.uses})
	}
	cases = append(cases, struct {
		name  string
		query string
		args  []any
		uses  []string
	}{"ListByCategory", sqlListStreams + " AND category = ? ORDER BY id LIMIT ?", []any{"", "order", 10}, []string{"streams_category"}})

	for _, c := range cases {
		rows, err := b.reader.Queryx("EXPLAIN QUERY PLAN "+c.query, c.args...)
		is.NoErr(err)
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			is.NoErr(rows.Scan(&id, &parent, &notused, &detail))
			plan = append(plan, detail)
		}
		is.NoErr(rows.Close())
		text := strings.Join(plan, "; ")
		t.Logf("%s: %s", c.name, text)
		union := strings.Contains(text, "UNION ALL")
		for _, line := range plan {
			if strings.HasPrefix(line, "SCAN e") || strings.HasPrefix(line, "SCAN streams") {
				t.Errorf("%s: full scan: %s", c.name, text)
			}
			// A union merges its arms, each of at most one page (LIMIT), by
			// sorting them: bounded work. Any other sort is not.
			if strings.Contains(line, "TEMP B-TREE") && !union {
				t.Errorf("%s: sorts rows: %s", c.name, text)
			}
		}
		for _, idx := range c.uses {
			if !strings.Contains(text, idx) {
				t.Errorf("%s: does not use %s: %s", c.name, idx, text)
			}
		}
	}
}

// many returns n distinct values: prefix and a number.
func many(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
