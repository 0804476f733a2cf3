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
// lookups: no full scan of the events table and no sort of its rows. Type
// filters walk the type index when there is one ([Options.TypeIndex]), and
// otherwise another field's index, or the log in position order.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	for _, typeIndex := range []bool{false, true} {
		t.Run(fmt.Sprintf("TypeIndex=%v", typeIndex), func(t *testing.T) {
			t.Parallel()
			testQueryPlans(t, typeIndex)
		})
	}
}

func testQueryPlans(t *testing.T, typeIndex bool) {
	is := is.New(t)
	b, err := Open(filepath.Join(t.TempDir(), "plan.db"), &Options{TypeIndex: typeIndex})
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
		q := b.buildAllQuery(f, backward)
		is.NoErr(q.seek(ctx, b, 0))
		return q.sql, q.args(0, 10)
	}
	// byType is the index a filter by type walks.
	byType := []string{"INTEGER PRIMARY KEY"}
	if typeIndex {
		byType = []string{"events_type"}
	}
	cases := []struct {
		name  string
		query string
		args  []any
		uses  []string // index names the plan must name
	}{
		{"ReadStreamFirst", sqlReadStreamFirst, []any{"order-1", 0, 10}, []string{"events_stream"}},
		{"ReadStreamFirstBackward", sqlReadStreamFirstBack, []any{"order-1", 5, 10}, []string{"events_stream"}},
		{"ReadStreamNext", sqlReadStreamNext, []any{1, 0, 5, 10}, []string{"events_stream"}},
		{"ReadStreamNextBackward", sqlReadStreamNextBack, []any{1, 0, 5, 10}, []string{"events_stream"}},
		{"StreamState", sqlStreamState, []any{"order-1"}, nil},
	}
	for _, c := range []struct {
		name     string
		filter   eventstore.Filter
		backward bool
		uses     []string
	}{
		{"ReadAll", eventstore.Filter{}, false, nil},
		{"ReadAllBackward", eventstore.Filter{}, true, nil},
		{"ByStream", eventstore.Filter{Streams: []string{"order-1"}}, false, []string{"events_stream"}},
		{"ByStreamBackward", eventstore.Filter{Streams: []string{"order-1"}}, true, []string{"events_stream"}},
		{"ByStreams", eventstore.Filter{Streams: []string{"order-1", "user-3"}}, false, []string{"events_stream"}},
		{"ByCategory", eventstore.Filter{Categories: []string{"order"}}, false, []string{"events_category"}},
		{"ByCategoryBackward", eventstore.Filter{Categories: []string{"order"}}, true, []string{"events_category"}},
		{"ByCategories", eventstore.Filter{Categories: []string{"order", "user"}}, false, []string{"events_category"}},
		{"ByType", eventstore.Filter{Types: []string{"A"}}, false, byType},
		{"ByTypes", eventstore.Filter{Types: []string{"A", "B", "C"}}, false, byType},
		{"ByCategoryAndType", eventstore.Filter{Categories: []string{"order"}, Types: []string{"A"}}, false, []string{"events_category"}},
		{"ByStreamAndType", eventstore.Filter{Streams: []string{"order-1"}, Types: []string{"A"}}, false, []string{"events_stream"}},
		{"ByGlob", eventstore.Filter{StreamGlob: "order-*"}, false, []string{"events_category"}},
		// A field too long for SQL is matched in Go; another field drives.
		{"HugeStreamsByType", eventstore.Filter{Streams: many("s-", 40_000), Types: []string{"A"}}, false, byType},
		{"HugeCategoriesByGlob", eventstore.Filter{Categories: many("c", 40_000), StreamGlob: "order-*"}, false, []string{"events_category"}},
		{"HugeEverything", eventstore.Filter{Streams: many("s-", 40_000), Categories: many("c", 40_000), Types: many("T", 40_000)}, true, nil},
		// The longest lists SQL takes, in every arm of the longest union:
		// still within SQLite's limit on variables.
		{"LongestPushdown", eventstore.Filter{Streams: many("s-", maxUnion), Categories: many("c", maxPushdown), Types: many("T", maxPushdown), StreamGlob: "s-*"}, false, []string{"events_stream"}},
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
	}{"ListByCategory", sqlListStreams + " AND s.category = (SELECT ck FROM stream_categories WHERE name = ?) ORDER BY s.id LIMIT ?", []any{"", "order", 10}, []string{"streams_category"}})

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
