package main_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
)

// TestRetention shows and sets policies: none at first; a category's,
// which a stream of it then shows as its own effective one; a stream's own,
// which overrides it; every policy listed, as a table and as JSON Lines;
// and a policy cleared.
func TestRetention(t *testing.T) {
	t.Parallel()
	path := fixture(t)
	steps := []struct {
		args  []string
		wants []string
	}{
		{[]string{"retention", path}, []string{"no retention policies"}},
		{[]string{"retention", path, "order-1"}, []string{"order-1 keeps every event"}},
		{[]string{"retention", path, "-category", "order", "-max-age", "30d"}, []string{"set the retention policy of category order: max-age 30d, max-count -, truncate-before -", "eventstore prune " + path}},
		{[]string{"retention", path, "order-1"}, []string{"POLICY OF", "category order", "30d"}},
		{[]string{"retention", path, "order-1", "-max-count", "1", "-max-age", "1d12h"}, []string{"stream order-1: max-age 1d12h, max-count 1"}},
		{[]string{"retention", path, "order-1"}, []string{"stream order-1", "1d12h", "1"}},
		{[]string{"retention", path, "order-2", "-json"}, []string{`{"stream":"order-2","category":"order","max_age":"720h0m0s"}`}},
		{[]string{"retention", path}, []string{"stream order-1", "category order"}},
		{[]string{"retention", path, "-json"}, []string{`{"stream":"order-1","max_age":"36h0m0s","max_count":1}`, `{"category":"order","max_age":"720h0m0s"}`}},
		{[]string{"retention", path, "-category", "order"}, []string{"category order", "30d"}},
		{[]string{"retention", path, "order-1", "-clear"}, []string{"removed the retention policy of stream order-1"}},
		{[]string{"retention", path, "order-1"}, []string{"category order", "30d"}},
	}
	for _, s := range steps {
		out, errOut, code := run(t, "", s.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d: %s", s.args, code, errOut)
		}
		expect(t, strings.Join(s.args[2:], " "), out, s.wants...)
	}
	s := openStore(t, path)
	r, err := s.Retention(context.Background(), "order-0")
	if err != nil || r != (eventstore.Retention{MaxAge: 30 * 24 * time.Hour}) {
		t.Errorf("order-0's retention: %+v, %v", r, err)
	}
}

// TestPrune prunes after a consumer: the expired events it has passed go,
// the one it has not stays until a prune without -after. A name with no
// checkpoint is refused, and nothing is pruned.
func TestPrune(t *testing.T) {
	t.Parallel()
	path := fixture(t) // order-0, -1, -2: positions 1-2, 3-4, 5-6; projector at 4
	if _, errOut, code := run(t, "", "retention", path, "-category", "order", "-max-count", "1"); code != 0 {
		t.Fatal(errOut)
	}
	_, errOut, code := run(t, "", "prune", path, "-after", "projector,nobody")
	if code != 1 || !strings.Contains(errOut, "nobody") || !strings.Contains(errOut, "eventstore consumers") {
		t.Errorf("prune after an unknown name: exit %d: %s", code, errOut)
	}
	out, errOut, code := run(t, "", "prune", path, "-after", "projector")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "prune -after projector", out, "pruned 2 events of 2 streams", "kept back 1 expired events that projector had not passed yet")
	if got := positions(t, path); got != "2 4 5 6 7" {
		t.Errorf("after prune -after projector: positions %s, want 2 4 5 6 7", got)
	}
	out, errOut, code = run(t, "", "prune", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "prune", out, "pruned 1 events of 1 streams", "before", "after")
	if got := positions(t, path); got != "2 4 6 7" {
		t.Errorf("after prune: positions %s, want 2 4 6 7", got)
	}
	out, errOut, code = run(t, "", "verify", path)
	if code != 0 {
		t.Fatalf("verify after prune: exit %d: %s%s", code, out, errOut)
	}
}

// positions lists the positions of the events in the store's log.
func positions(t *testing.T, path string) string {
	t.Helper()
	s := openStore(t, path)
	defer s.Close()
	var out []string
	for e, err := range s.ReadAll(context.Background(), eventstore.ReadOptions{}, eventstore.Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strconv.FormatInt(e.Position, 10))
	}
	return strings.Join(out, " ")
}

// TestPrune_OldFile: prune on a file made before incremental vacuum says
// how to make it shrink.
func TestPrune_OldFile(t *testing.T) {
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
	s := openStore(t, path)
	ctx := context.Background()
	for range 3 {
		if _, err := s.Append(ctx, "order-1", eventstore.Any, eventstore.Event{Type: "Placed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetRetention(ctx, "order-1", eventstore.Retention{MaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	out, errOut, code := run(t, "", "prune", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	expect(t, "prune", out, "pruned 2 events of 1 streams", "eventstore vacuum "+path)
}
