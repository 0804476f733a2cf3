package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// The statements of a group commit: a group's appends write their events
// with a few multi-row statements rather than one statement per event,
// and create the streams they start with two. The event inserts are built
// from the single-row statement of append.go, so they follow it. Each is
// prepared at Open in a few fixed sizes (a statement prepared for another
// size would be parsed again on every group), and a group's rows go out in
// the largest that fit.

const (
	// sqlGroupStreams reads the records of many streams at once, as
	// sqlStreamState reads one: those this Backend knows (streamCache) by
	// key (the first parameter), the others by ID (the second). The key's
	// row names its stream ID, which the group checks: the key comes from
	// memory. Parameters are anonymous, as in sqlInsertEvent.
	sqlGroupStreams = `SELECT s.id, s.sk, s.category, s.life, s.state, max(s.version,
		coalesce((SELECT max(e.version) FROM events e WHERE e.stream = s.sk AND e.life = s.life), -1))
	FROM streams s WHERE s.sk IN (SELECT value FROM json_each(?))
	UNION ALL
	SELECT s.id, s.sk, s.category, s.life, s.state, max(s.version,
		coalesce((SELECT max(e.version) FROM events e WHERE e.stream = s.sk AND e.life = s.life), -1))
	FROM streams s WHERE s.id IN (SELECT value FROM json_each(?))`

	// sqlGroupCategories and sqlGroupNewStreams create the records of the
	// streams a group starts, as sqlInsertCategory and sqlInsertStream do
	// one: the parameter is a JSON array of [stream ID, category, Unix
	// nanoseconds].
	sqlGroupCategories = `INSERT INTO stream_categories (name)
	SELECT value ->> 1 FROM json_each(?) WHERE true ON CONFLICT (name) DO NOTHING`
	sqlGroupNewStreams = `INSERT INTO streams (id, category, life, state, version, created_at, updated_at)
	SELECT value ->> 0, (SELECT ck FROM stream_categories WHERE name = value ->> 1), 0, 0, -1, value ->> 2, value ->> 2
	FROM json_each(?) RETURNING id, sk, category`
)

// rowBatches are the sizes of the multi-row inserts, largest first; fewer
// rows than the smallest go out one by one.
var rowBatches = []int{64, 16, 4}

// insertRows are the inserts of events by number of rows. The one-row
// insert is sqlInsertNextEvent, which takes the position from
// log_high_water when that is higher (see sqlInsertEvent); the multi-row
// ones leave the position to SQLite (one past the highest), and so must
// follow a one-row insert of the same transaction, as an append's or a
// group's first event is.
//
// The multi-row ones are INSERT OR ROLLBACK, with no position given: a
// statement that writes many rows and may fail half-way keeps a statement
// journal, a copy of every page it changes, which SQLite spills to a
// temporary file past 64 KiB; with 64 appenders that was a tenth of the
// group leader's time. Their rows cannot conflict unless a group's stream
// moved under its feet, and a group that fails is rolled back whole
// anyway; an append's later events follow a first that checked the
// stream. (OR ROLLBACK with the position given kept the journal:
// measured, 6% of the leader's time against 7%.)
var insertRows = byRows(sqlInsertNextEvent)

// byRows makes the inserts of insertRows, from the one-row insert.
func byRows(one string) map[int]string {
	m := map[int]string{1: one}
	for _, n := range rowBatches {
		m[n] = `INSERT OR ROLLBACK INTO events (id, stream, life, version, category, type, data, metadata, recorded_at, checksum) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	}
	return m
}

// groupPath are the group commit's statements, prepared at Open.
func groupPath() []string {
	qs := []string{sqlGroupStreams, sqlGroupCategories, sqlGroupNewStreams, sqlDataVersion}
	for _, n := range rowBatches {
		qs = append(qs, insertRows[n])
	}
	return qs
}

// sqlDataVersion tells whether another connection has committed to the
// file since it was last read on this one.
const sqlDataVersion = `PRAGMA data_version`

// trustCache ends the trust of streamCache's records when another
// connection, of this process or another, has committed to the file since
// they were trusted last: see streamCache. It runs in the write
// transaction of the group that trusts them, which holds the file's write
// lock, so no commit of another connection falls between it and their use.
func (b *Backend) trustCache(ctx context.Context, tx *sqlx.Tx) error {
	var v int64
	if err := tx.Tx.StmtContext(ctx, b.prepared[sqlDataVersion].Stmt).QueryRowContext(ctx).Scan(&v); err != nil {
		return fail(ctx, err)
	}
	if v != b.dataVersion {
		b.known.distrust()
		b.dataVersion = v
	}
	return nil
}

// streamRow is a stream's record as a group sees it: read at the group's
// start, and moved on by each of its appends.
type streamRow struct {
	id string
	streamRecord
	// Set by the group's appends:
	touched bool
	start   bool  // the group creates its record, or starts its next life
	at      int64 // when it starts: Unix nanoseconds
}

// groupStreams reads the records of streams; a stream without one is
// absent from the map. Records that streamCache trusts are taken from it.
func (b *Backend) groupStreams(ctx context.Context, tx *sqlx.Tx, streams []string) (map[string]*streamRow, error) {
	if err := b.trustCache(ctx, tx); err != nil {
		return nil, err
	}
	var keys []int64
	var ids, byKey []string
	states := make(map[string]*streamRow, len(streams))
	for _, id := range streams {
		if st, ok := b.known.trusted(id); ok && st.sk != 0 {
			states[id] = &streamRow{id: id, streamRecord: st}
		} else if st, ok := b.known.get(id); ok && st.sk != 0 {
			keys = append(keys, st.sk)
			byKey = append(byKey, id)
		} else {
			ids = append(ids, id)
		}
	}
	if len(keys) == 0 && len(ids) == 0 {
		return states, nil
	}
	if err := b.readStreams(ctx, tx, keys, ids, states); err != nil {
		return nil, err
	}
	// A key whose record is not the stream's (it came from a transaction
	// that was rolled back): read the stream by ID.
	ids = ids[:0]
	for k, id := range byKey {
		if states[id] == nil || states[id].sk != keys[k] {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		if err := b.readStreams(ctx, tx, nil, ids, states); err != nil {
			return nil, err
		}
	}
	return states, nil
}

// readStreams reads the records of the streams of keys and ids into states,
// by stream ID; a record read by key is kept only under its own ID.
func (b *Backend) readStreams(ctx context.Context, tx *sqlx.Tx, keys []int64, ids []string, states map[string]*streamRow) error {
	k, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	i, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	if err := b.injected(sqlGroupStreams); err != nil {
		return err
	}
	args := []any{string(k), string(i)}
	start := b.logStart()
	rows, err := b.stmt(ctx, tx, sqlGroupStreams).QueryContext(ctx, args...)
	b.logSQL(ctx, sqlGroupStreams, args, start, err)
	if err != nil {
		return fail(ctx, err)
	}
	for rows.Next() {
		st := &streamRow{}
		if err := rows.Scan(&st.id, &st.sk, &st.category, &st.life, &st.state, &st.version); err != nil {
			rows.Close()
			return fail(ctx, err)
		}
		if st.state < 0 {
			st.version = -1
		}
		states[st.id] = st
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail(ctx, err)
	}
	return nil
}

// startStreams creates the records of the streams the group starts, and
// starts the next life of those deleted, in the order given.
func (b *Backend) startStreams(ctx context.Context, tx *sqlx.Tx, started []*streamRow) error {
	var fresh [][3]any
	byID := make(map[string]*streamRow)
	for _, st := range started {
		if st.sk != 0 { // deleted: its next life
			if _, err := b.exec(ctx, tx, sqlRestartStream, st.at, st.at, st.sk); err != nil {
				return err
			}
			st.state = 0
			continue
		}
		fresh = append(fresh, [3]any{st.id, eventstore.Category(st.id), st.at})
		byID[st.id] = st
	}
	if len(fresh) == 0 {
		return nil
	}
	j, err := json.Marshal(fresh)
	if err != nil {
		return err
	}
	if _, err := b.exec(ctx, tx, sqlGroupCategories, string(j)); err != nil {
		return err
	}
	if err := b.injected(sqlGroupNewStreams); err != nil {
		return err
	}
	start := b.logStart()
	rows, err := b.stmt(ctx, tx, sqlGroupNewStreams).QueryContext(ctx, string(j))
	b.logSQL(ctx, sqlGroupNewStreams, []any{string(j)}, start, err)
	if err != nil {
		return fail(ctx, err)
	}
	n := 0
	for rows.Next() {
		var id string
		var sk, category int64
		if err := rows.Scan(&id, &sk, &category); err != nil {
			rows.Close()
			return fail(ctx, err)
		}
		if st := byID[id]; st != nil {
			st.sk, st.category = sk, category
			n++
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail(ctx, err)
	}
	if n != len(fresh) {
		return errors.New("new streams: a record was not returned")
	}
	return nil
}

// eventRow is one event a group inserts.
type eventRow struct {
	req     *eventstore.AppendRequest
	i       int // the event in req.Events
	st      *streamRow
	life    int64
	version int64
}

// insertGroupEvents inserts rows in order and returns the position of each.
// They get consecutive positions, in order: the first one past the highest
// given (see sqlInsertEvent), in a statement of its own, and each of the
// rest one past the row before.
func (b *Backend) insertGroupEvents(ctx context.Context, tx *sqlx.Tx, rows []eventRow) ([]int64, error) {
	positions := make([]int64, len(rows))
	args := make([]any, 0, 10*min(len(rows), rowBatches[0]))
	for done := 0; done < len(rows); {
		n := batchSize(len(rows) - done)
		if done == 0 {
			n = 1
		}
		args = args[:0]
		for _, r := range rows[done : done+n] {
			e := &r.req.Events[r.i]
			data, meta := nullIfEmpty(e.Data), nullIfEmpty(e.Metadata)
			args = append(args, e.ID[:], r.st.sk, r.life, r.version, r.st.category,
				e.Type, data, meta, r.req.Time.UnixNano(), int64(checksum(r.req.Stream, r.version, e.Type, data, meta)))
		}
		res, err := b.exec(ctx, tx, insertRows[n], args...)
		if err != nil {
			return nil, err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, fail(ctx, err)
		}
		for k := range n {
			positions[done+k] = last - int64(n-1-k)
		}
		done += n
	}
	return positions, nil
}

// batchSize is how many of left rows the next statement takes.
func batchSize(left int) int {
	for _, n := range rowBatches {
		if left >= n {
			return n
		}
	}
	return 1
}
