// Package bench measures eventstore against raw SQLite through three
// drivers, in one process and one run: modernc.org/sqlite through
// database/sql (the baseline, the driver eventstore uses),
// zombiezen.com/go/sqlite (the same engine without database/sql: the
// ceiling of a pure-Go stack), and github.com/mattn/go-sqlite3 (cgo: what
// going pure Go gives up).
//
// The workload, fixed so that other libraries can run the same one:
// events of 200 bytes of JSON data, spread over 1,000 streams
// ("bench-0" ... "bench-999"), each transaction (or Append) to the next
// stream in turn, appended with no concurrency check; the raw baselines
// insert the same rows (16-byte ID, stream, version, type,
// data, time) into a table with a primary key on the position and a
// unique index on (stream, version), the minimum an event store needs.
package bench

import (
	"fmt"
	"strings"
)

const (
	streams  = 1000
	scanSize = 100_000
)

var data = []byte(`{"id":"` + strings.Repeat("0", 36) + `","kind":"reading","sensor":"temp-01","value":21.5,"unit":"C","note":"` + strings.Repeat("x", 90) + `"}`)

func stream(i int) string { return fmt.Sprintf("bench-%d", i%streams) }

const rawSchema = `
CREATE TABLE events (
	position    INTEGER PRIMARY KEY,
	id          BLOB NOT NULL,
	stream_id   TEXT NOT NULL,
	version     INTEGER NOT NULL,
	type        TEXT NOT NULL,
	data        BLOB,
	recorded_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_stream_version ON events (stream_id, version);`

const rawInsert = `INSERT INTO events (id, stream_id, version, type, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`
const rawScan = `SELECT position, id, stream_id, version, type, data, recorded_at FROM events ORDER BY position`
