package sqlite

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// storeRecords is every record of a store file, each as one line of text,
// by kind, in the same form whatever the schema version: what migrating
// must keep.
type storeRecords map[string][]string

// oldRecords reads the records of a file at schema version v (before
// migration 7) with plain SQL.
func oldRecords(t *testing.T, db *sqlx.DB, v int) storeRecords {
	t.Helper()
	r := storeRecords{
		"events": rowsText(t, db, `SELECT position, hex(id), stream_id, life, version, category, type,
			coalesce(data, ''), coalesce(metadata, ''), recorded_at FROM events ORDER BY position`),
		"streams": rowsText(t, db, `SELECT id, category, life, version, created_at, updated_at FROM streams ORDER BY id`),
		"last position": rowsText(t, db, `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
			coalesce((SELECT max(position) FROM events), 0))`),
	}
	sameTables(t, db, r, v)
	return r
}

// newRecords reads the records of a file at schema version 7 in the form
// of oldRecords.
func newRecords(t *testing.T, db *sqlx.DB, v int) storeRecords {
	t.Helper()
	r := storeRecords{
		"events": rowsText(t, db, `SELECT e.position, hex(e.id), s.id, e.life, e.version, c.name, e.type,
			coalesce(e.data, ''), coalesce(e.metadata, ''), e.recorded_at
			FROM events e JOIN streams s ON s.sk = e.stream JOIN stream_categories c ON c.ck = e.category ORDER BY e.position`),
		"streams": rowsText(t, db, `SELECT s.id, c.name, s.life,
				CASE WHEN s.state < 0 THEN s.state ELSE `+sqlVersionOf+` END, s.created_at,
				CASE WHEN s.state < 0 OR s.version >= coalesce(l.version, -1) THEN s.updated_at ELSE l.recorded_at END
			FROM streams s JOIN stream_categories c ON c.ck = s.category
			LEFT JOIN events l ON l.position = (SELECT position FROM events WHERE stream = s.sk AND life = s.life ORDER BY version DESC LIMIT 1)
			ORDER BY s.id`),
		"last position": rowsText(t, db, `SELECT max(coalesce((SELECT position FROM log_high_water), 0),
			coalesce((SELECT max(position) FROM events), 0))`),
	}
	sameTables(t, db, r, v)
	return r
}

// sameTables reads the tables that migration 7 leaves as they are, those
// that the file's version v has.
func sameTables(t *testing.T, db *sqlx.DB, r storeRecords, v int) {
	if v >= 2 {
		r["checkpoints"] = rowsText(t, db, `SELECT * FROM checkpoints ORDER BY consumer`)
		r["processed"] = rowsText(t, db, `SELECT consumer, hex(event_id), position FROM processed ORDER BY consumer, position`)
		r["parked"] = rowsText(t, db, `SELECT consumer, position, hex(event_id), stream_id, error, attempts, parked_at FROM parked ORDER BY consumer, position`)
	}
	if v >= 3 {
		cols := "stream_id, version, data, metadata, created_at"
		if v >= 5 {
			cols += ", life, position"
		}
		r["snapshots"] = rowsText(t, db, `SELECT `+cols+` FROM snapshots ORDER BY stream_id, version`)
	}
	if v >= 4 {
		r["idempotency keys"] = rowsText(t, db, `SELECT * FROM idempotency_keys ORDER BY stream_id, key`)
	}
	if v >= 6 {
		r["claims"] = rowsText(t, db, `SELECT * FROM claims ORDER BY consumer`)
	}
	if v >= 8 {
		r["retention policies"] = rowsText(t, db, `SELECT * FROM retention_policies ORDER BY kind, name`)
		r["pruned streams"] = rowsText(t, db, `SELECT id FROM streams WHERE pruned = 1 ORDER BY id`)
	}
}

func rowsText(t *testing.T, db *sqlx.DB, query string) []string {
	t.Helper()
	rows, err := db.Queryx(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.SliceScan()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// copyFile copies a test file into dir, to be changed there.
func copyFile(t *testing.T, src, dir string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dest := filepath.Join(dir, filepath.Base(src))
	out, err := os.Create(dest)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dest
}

// TestMigrate_Releases opens a copy of a store file written by the
// release of each earlier schema version (testdata/README.md), and checks
// that migrating it keeps every record: events with their positions, IDs,
// lives, versions and times; streams with their lives, versions,
// deletions and tombstones; the highest position given; snapshots,
// checkpoints, processed marks, parked events, idempotency keys and
// claims. The migrated store then verifies (every event's new checksum
// included) and goes on where the old one stopped.
func TestMigrate_Releases(t *testing.T) {
	t.Parallel()
	for _, v := range []int{1, 2, 3, 4, 5, 6, 8} { // no v7.db: version 8 followed 7 before any release
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			t.Parallel()
			is := is.New(t)
			ctx := context.Background()
			path := copyFile(t, filepath.Join("testdata", fmt.Sprintf("v%d.db", v)), t.TempDir())
			db, err := sqlx.Open("sqlite", path)
			is.NoErr(err)
			var found int
			is.NoErr(db.Get(&found, `SELECT count(*) FROM sqlite_schema WHERE name = 'eventstore_schema'`))
			if found == 1 {
				is.NoErr(db.Get(&found, `SELECT version FROM eventstore_schema`))
			} else {
				is.NoErr(db.Get(&found, `PRAGMA user_version`))
			}
			is.Equal(found, v) // the file is of the release it is named after
			var before storeRecords
			if v < 7 {
				before = oldRecords(t, db, v)
			} else {
				before = newRecords(t, db, v)
			}
			is.NoErr(db.Close())
			// Every kind of record the version has is in the file.
			has := func(kind, substr string) {
				t.Helper()
				if !slices.ContainsFunc(before[kind], func(l string) bool { return strings.Contains(l, substr) }) {
					t.Errorf("the v%d file has no %s record with %q", v, kind, substr)
				}
			}
			has("streams", "order-1|order|1|1|") // deleted, then started again
			has("streams", "user-2|user|1|-1|")  // deleted
			has("streams", "plain|plain|0|0|")   // no category separator
			has("events", "|order-1|0|1|order|") // of the first life of order-1
			if v >= 2 {
				has("checkpoints", "projector|10")
				has("processed", "projector|")
				has("parked", "projector|")
			}
			if v >= 3 {
				has("snapshots", "order-0|1|")
			}
			if v >= 4 {
				has("streams", "cart-purged|cart|1|-2|") // the tombstone
				has("idempotency keys", "order-4|req-1|")
				is.Equal(before["last position"], []string{"158"}) // purged past the last event
			}
			if v >= 6 {
				has("claims", "projector|owner-token|")
			}
			if v >= 8 {
				has("retention policies", "stream|device-3|0|1|0")
				has("pruned streams", "device-3")
			}

			b, err := Open(path, nil)
			is.NoErr(err)
			s := eventstore.New(b, nil)
			defer s.Close()
			got, err := readSchemaVersion(ctx, b.reader)
			is.NoErr(err)
			is.Equal(got, SchemaVersion())
			after := newRecords(t, b.reader, v)
			for kind, want := range before {
				if !slices.Equal(after[kind], want) {
					t.Errorf("%s after migrating:\n%s\nwant:\n%s", kind, strings.Join(after[kind], "\n"), strings.Join(want, "\n"))
				}
			}
			r, err := s.Verify(ctx)
			is.NoErr(err)
			is.Equal(r.Problems, nil)
			is.True(r.OK())

			// The store goes on: positions after the highest ever given,
			// versions after the last, a deleted stream's next life.
			var last int64
			fmt.Sscan(before["last position"][0], &last)
			res, err := s.Append(ctx, "order-0", eventstore.Exact(1), eventstore.Event{Type: "After"})
			is.NoErr(err)
			is.Equal(res.Version, int64(2))
			is.True(res.Position > last)
			_, err = s.Append(ctx, "user-2", eventstore.NoStream, eventstore.Event{Type: "Again"})
			is.NoErr(err)
			if v >= 4 {
				_, err = s.Append(ctx, "cart-purged", eventstore.Any, eventstore.Event{Type: "Again"})
				is.True(err != nil) // the tombstone holds
			}
		})
	}
}

const migrateKillEnv = "EVENTSTORE_MIGRATE_KILL_CHILD" // the store path, in the child

// TestMigrate_Killed kills a process (this test binary) while it migrates
// a store file of schema version 6 with tens of thousands of events, at a
// random moment, again and again: the file always opens afterwards, at
// version 6 with every event in the old tables or at version 7 or a
// later one with every event in the new ones (each migration whole),
// never in between, and then migrates and verifies.
func TestMigrate_Killed(t *testing.T) {
	if path := os.Getenv(migrateKillEnv); path != "" {
		b, err := Open(path, nil)
		if err == nil {
			err = b.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		return
	}
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	// A bigger version 6 file: the generator's, with bulk events added
	// with the old schema's SQL.
	const extra = 30_000
	orig := copyFile(t, filepath.Join("testdata", "v6.db"), dir)
	db, err := sqlx.Open("sqlite", orig)
	is.NoErr(err)
	var events int64
	is.NoErr(db.Get(&events, `SELECT count(*) FROM events`))
	_, err = db.Exec(`WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
		INSERT INTO events (id, stream_id, life, version, category, type, data, recorded_at)
		SELECT randomblob(16), 'load-' || (i % 100), 0, i / 100, 'load', 'Loaded', '{"i":' || i || ',"pad":"`+strings.Repeat("x", 60)+`"}', 1
		FROM n`, extra)
	is.NoErr(err)
	_, err = db.Exec(`INSERT INTO streams (id, category, life, version, created_at, updated_at)
		SELECT 'load-' || i, 'load', 0, ? / 100 - 1, 1, 1 FROM (WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 99) SELECT i FROM n)`, extra)
	is.NoErr(err)
	is.NoErr(db.Close())
	events += extra

	migrate := func(path string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMigrate_Killed$")
		cmd.Env = append(os.Environ(), migrateKillEnv+"="+path)
		cmd.Stderr = os.Stderr
		is.NoErr(cmd.Start())
		return cmd
	}
	// The first migration runs to its end, which says how long one takes
	// on this machine; the others are killed at a random moment within it.
	var whole time.Duration
	seen := map[int]int{}
	for round := range 6 {
		path := filepath.Join(dir, fmt.Sprintf("round-%d.db", round))
		is.NoErr(os.Link(copyFile(t, orig, t.TempDir()), path))
		start := time.Now()
		cmd := migrate(path)
		if round == 0 {
			is.NoErr(cmd.Wait())
			whole = time.Since(start)
		} else {
			time.Sleep(rand.N(whole)) // a random moment, not a wait for anything
			cmd.Process.Kill()
			cmd.Wait()
		}
		// The file as the killed process left it, read without migrating.
		db, err := sqlx.Open("sqlite", path)
		is.NoErr(err)
		var v int
		is.NoErr(db.Get(&v, `SELECT version FROM eventstore_schema`))
		seen[v]++
		var n int64
		switch v {
		case 6:
			is.NoErr(db.Get(&n, `SELECT count(*) FROM events WHERE stream_id IS NOT NULL`))
		case 7, 8, SchemaVersion(): // killed between migration 7 and a later one, or after the last
			is.NoErr(db.Get(&n, `SELECT count(*) FROM events e JOIN streams s ON s.sk = e.stream`))
			if v >= eventsRebuilt {
				var ids int64
				is.NoErr(db.Get(&ids, `SELECT (SELECT count(*) FROM event_ids) + (SELECT count(*) FROM event_ids_shared)`))
				is.Equal(ids, events) // every event's ID
			}
		default:
			t.Fatalf("round %d: the file is at version %d", round, v)
		}
		is.Equal(n, events) // every event, in the tables of its version
		var integrity string
		is.NoErr(db.Get(&integrity, `PRAGMA integrity_check`))
		is.Equal(integrity, "ok")
		is.NoErr(db.Close())

		b, err := Open(path, nil)
		is.NoErr(err)
		r, err := eventstore.New(b, nil).Verify(ctx)
		is.NoErr(err)
		is.Equal(r.Problems, nil)
		is.Equal(r.Events, events)
		is.NoErr(b.Close())
	}
	t.Logf("a migration of %d events takes %v here; versions found after the kills: %v", events, whole, seen)
}
