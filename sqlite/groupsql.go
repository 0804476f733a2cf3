package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

// The statements of a group commit: a group's appends write their events,
// and their streams' rows, with a few multi-row statements rather than
// three statements each. They are built from the single-row statements of
// append.go, so they follow them. Each is prepared at Open in a few fixed
// sizes (a statement prepared for another size would be parsed again on
// every group), and a group's rows go out in the largest that fit.

// groupStates reads the life and last version of many streams at once.
const sqlGroupStates = `SELECT id, life, version FROM streams WHERE id IN (SELECT value FROM json_each(?))`

// rowBatches are the sizes of the multi-row statements, largest first;
// fewer rows than the smallest go out one by one.
var rowBatches = []int{64, 16, 4}

// insertRows and upsertRows are the multi-row statements by size.
var insertRows, upsertRows = byRows(sqlInsertEvent), byRows(sqlUpsertStream)

func byRows(query string) map[int]string {
	m := map[int]string{1: query}
	for _, n := range rowBatches {
		m[n] = multiRow(query, n)
	}
	return m
}

// groupPath are the group commit's statements, prepared at Open.
func groupPath() []string {
	qs := []string{sqlGroupStates}
	for _, n := range rowBatches {
		qs = append(qs, insertRows[n], upsertRows[n])
	}
	return qs
}

// multiRow turns an INSERT of one row (VALUES and one parenthesised tuple,
// maybe followed by an ON CONFLICT clause) into one of n rows.
func multiRow(query string, n int) string {
	const values = "VALUES "
	i := strings.Index(query, values) + len(values)
	j := i + strings.IndexByte(query[i:], ')') + 1
	return query[:j] + strings.Repeat(", "+query[i:j], n-1) + query[j:]
}

// streamRow is a stream's row as a group sees it: read at the group's
// start, and moved on by each of its appends.
type streamRow struct {
	life, version int64
	// Set by the group's appends:
	touched            bool
	created, updated   int64 // Unix nanoseconds
	existedBeforeGroup bool
}

// groupStates reads the rows of streams; a stream without one is absent
// from the map.
func (b *Backend) groupStates(ctx context.Context, tx *sqlx.Tx, streams []string) (map[string]*streamRow, error) {
	ids, err := json.Marshal(streams)
	if err != nil {
		return nil, err
	}
	if err := b.injected(sqlGroupStates); err != nil {
		return nil, err
	}
	start := b.logStart()
	rows, err := b.stmt(ctx, tx, sqlGroupStates).QueryContext(ctx, string(ids))
	b.logSQL(ctx, sqlGroupStates, []any{string(ids)}, start, err)
	if err != nil {
		return nil, fail(ctx, err)
	}
	states := make(map[string]*streamRow, len(streams))
	for rows.Next() {
		var id string
		st := &streamRow{}
		if err := rows.Scan(&id, &st.life, &st.version); err != nil {
			rows.Close()
			return nil, fail(ctx, err)
		}
		st.existedBeforeGroup = st.version >= 0
		states[id] = st
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fail(ctx, err)
	}
	return states, nil
}

// eventRow is one event a group inserts.
type eventRow struct {
	req     *eventstore.AppendRequest
	i       int // the event in req.Events
	life    int64
	version int64
}

// insertEvents inserts rows in order and returns the position of each.
// The rows of one statement get consecutive positions, in order: SQLite
// gives each new row the next one after the highest it has given.
func (b *Backend) insertEvents(ctx context.Context, tx *sqlx.Tx, rows []eventRow) ([]int64, error) {
	positions := make([]int64, len(rows))
	args := make([]any, 0, 9*min(len(rows), rowBatches[0]))
	for done := 0; done < len(rows); {
		n := batchSize(len(rows) - done)
		args = args[:0]
		for _, r := range rows[done : done+n] {
			e := &r.req.Events[r.i]
			args = append(args, e.ID[:], r.req.Stream, r.life, r.version, eventstore.Category(r.req.Stream),
				e.Type, nullIfEmpty(e.Data), nullIfEmpty(e.Metadata), r.req.Time.UnixNano())
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

// upsertStreams writes the rows of the streams a group appended to.
func (b *Backend) upsertStreams(ctx context.Context, tx *sqlx.Tx, ids []string, states map[string]*streamRow) error {
	args := make([]any, 0, 6*min(len(ids), rowBatches[0]))
	for done := 0; done < len(ids); {
		n := batchSize(len(ids) - done)
		args = args[:0]
		for _, id := range ids[done : done+n] {
			st := states[id]
			args = append(args, id, eventstore.Category(id), st.life, st.version, st.created, st.updated)
		}
		if _, err := b.exec(ctx, tx, upsertRows[n], args...); err != nil {
			return err
		}
		done += n
	}
	return nil
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
