//go:build !race

package sqlite

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/matryer/is"
)

// This test writes a million rows, which takes seconds, and minutes under
// the race detector (it instruments SQLite itself, compiled from C to Go),
// so it is left out of -race builds. CI runs it without -race.

// TestReadMillionEventStream reads a 1,000,000-event stream and checks
// that the heap stays under 16 MiB: reads page, they do not load.
func TestReadMillionEventStream(t *testing.T) {
	is := is.New(t)
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), "big.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	const n = 1_000_000
	start := time.Now()
	// Written in SQL: a million Appends would take longer than the point
	// of this test. About 200 bytes of JSON per event.
	_, err = b.writer.Exec(`INSERT INTO stream_categories (ck, name) VALUES (1, 'big')`)
	is.NoErr(err)
	_, err = b.writer.Exec(`INSERT INTO streams (sk, id, category, life, state, version, created_at, updated_at)
	VALUES (1, 'big-1', 1, 0, 0, -1, 0, 0)`)
	is.NoErr(err)
	_, err = b.writer.Exec(`
	WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ? - 1)
	INSERT INTO events (id, stream, life, version, category, type, data, recorded_at, checksum)
	SELECT CAST(printf('%016d', i) AS BLOB), 1, 0, i, 1, 'Ticked', d, 0, eventstore_checksum('big-1', i, 'Ticked', d, NULL)
	FROM (SELECT i, CAST('{"i":' || i || ',"pad":"' || ? || '"}' AS BLOB) AS d FROM seq)`, n, strings.Repeat("x", 180))
	is.NoErr(err)

	t.Logf("written in %v", time.Since(start))
	start = time.Now()
	runtime.GC()
	var ms runtime.MemStats
	var peak uint64
	count := int64(0)
	for e, err := range s.ReadStream(ctx, "big-1", eventstore.ReadOptions{}) {
		is.NoErr(err)
		if e.Version != count {
			t.Fatalf("version %d at %d", e.Version, count)
		}
		if count%25_000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		count++
	}
	is.Equal(count, int64(n))
	t.Logf("read in %v; peak heap while reading %d events: %.1f MiB", time.Since(start), n, float64(peak)/(1<<20))
	if peak >= 16<<20 {
		t.Errorf("peak heap %.1f MiB, want under 16 MiB", float64(peak)/(1<<20))
	}
}
