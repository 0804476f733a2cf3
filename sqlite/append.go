package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const (
	// A stream's version is the higher of its record's version column and
	// the last version among the events of its current life: see streams
	// in schema.sql.
	sqlStreamState = `SELECT sk, category, life, state, max(version,
		coalesce((SELECT max(e.version) FROM events e WHERE e.stream = s.sk AND e.life = s.life), -1))
	FROM streams s WHERE id = ?`

	// The position is SQLite's next rowid (one past the highest), unless
	// log_high_water records a higher position given before. The event is
	// written only if the stream (its key, the second parameter, and its
	// ID) is live in its life (the third) at the version before the
	// event's (the fourth): the check of the stream's state that an append
	// read, or took from streamCache, made again where it cannot be stale.
	// The ID is checked too: a key in streamCache may come from a
	// transaction that was rolled back, and name another stream since.
	// The parameters are anonymous (?), the repeated ones passed again:
	// the driver allocates the name of a numbered one (?N) on every
	// execution, eleven allocations per append.
	sqlInsertEvent = `INSERT INTO events
	(position, id, stream, life, version, category, type, data, metadata, recorded_at, checksum)
	SELECT (SELECT position + 1 FROM log_high_water WHERE position >= coalesce((SELECT max(position) FROM events), 0)),
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?
	WHERE (SELECT max(s.version, coalesce((SELECT max(v.version) FROM events v WHERE v.stream = s.sk AND v.life = s.life), -1))
		FROM streams s WHERE s.sk = ? AND s.id = ? AND s.life = ? AND s.state = 0) = ? - 1`

	// The events of an append after its first, whose insert checked the
	// stream: the rest need no check, in the same transaction.
	sqlInsertNextEvent = `INSERT INTO events
	(position, id, stream, life, version, category, type, data, metadata, recorded_at, checksum)
	VALUES ((SELECT position + 1 FROM log_high_water WHERE position >= coalesce((SELECT max(position) FROM events), 0)),
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// A new stream's record, with its category's key.
	sqlInsertCategory = `INSERT INTO stream_categories (name) VALUES (?) ON CONFLICT (name) DO NOTHING`
	sqlInsertStream   = `INSERT INTO streams (id, category, life, state, version, created_at, updated_at)
	VALUES (?, (SELECT ck FROM stream_categories WHERE name = ?), 0, 0, -1, ?, ?)`
	// The first append of a deleted stream's next life.
	sqlRestartStream = `UPDATE streams SET state = 0, version = -1, created_at = ?, updated_at = ? WHERE sk = ?`

	sqlDeleteStream = `UPDATE streams SET state = -1, version = -1, life = life + 1 WHERE sk = ?`

	sqlIdempotencyKey = `SELECT version, position FROM idempotency_keys WHERE stream_id = ? AND key = ?`
	sqlSavepoint      = `SAVEPOINT eventstore`
	sqlRelease        = `RELEASE eventstore`
	sqlRollbackTo     = `ROLLBACK TO eventstore`
)

// streamRecord is what an append needs of a stream's record.
type streamRecord struct {
	sk       int64 // 0: no record yet
	category int64
	life     int64
	state    int64
	version  int64 // -1: none
}

// Append implements [eventstore.Backend].
func (b *Backend) Append(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	res, err := b.appendTx(ctx, req)
	b.noteFull(ctx, err)
	// The happy path never looks the IDs up: a stored ID shows up as a
	// unique violation, and a retry usually as a version conflict (the
	// stream has moved on). Only then is it worth asking which it is.
	if errors.Is(err, eventstore.ErrDuplicateEvent) || errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		prev, retry, rerr := b.retried(ctx, req)
		switch {
		case rerr != nil:
			return eventstore.AppendResult{}, rerr
		case retry:
			return prev, nil
		}
	}
	return res, err
}

// appendTx runs one append: inside the caller's transaction when ctx
// carries one, and otherwise through group commit.
func (b *Backend) appendTx(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	if Tx(ctx) != nil {
		var res eventstore.AppendResult
		err := b.write(ctx, func(tx *sqlx.Tx) error {
			var err error
			res, err = b.appendIn(ctx, tx, req)
			return err
		})
		return res, err
	}
	return b.group.append(ctx, b, req)
}

// appendIn writes one append in tx.
func (b *Backend) appendIn(ctx context.Context, tx *sqlx.Tx, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	res, _, err := b.appendChecked(ctx, tx, req)
	return res, err
}

// appendChecked is appendIn that also reports whether it failed after it
// had begun writing (dirty), so that its transaction holds a partial
// append. Its checks (idempotency key, expected version) all come before
// the first write.
func (b *Backend) appendChecked(ctx context.Context, tx *sqlx.Tx, req eventstore.AppendRequest) (res eventstore.AppendResult, dirty bool, err error) {
	if req.IdempotencyKey != "" {
		err := b.stmt(ctx, tx, sqlIdempotencyKey).QueryRowxContext(ctx, req.Stream, req.IdempotencyKey).Scan(&res.Version, &res.Position)
		if err == nil {
			return res, false, nil // done before: the earlier result, nothing written
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return res, false, fail(ctx, err)
		}
	}
	at := req.Time.UnixNano()
	st, known := b.known.get(req.Stream)
	if known && req.Expected.Check(req.Stream, st.version) != nil {
		known = false // a conflict is reported from the file, not from memory
	}
	for {
		if !known {
			if st, dirty, err = b.startAppend(ctx, tx, req, at); err != nil {
				return res, dirty, err
			}
		}
		version, ok, err := b.insertEvents(ctx, tx, req, st, at, &res)
		if err != nil {
			return res, true, err
		}
		if !ok && known {
			known = false // the stream moved on behind this Backend's back: read it
			continue
		}
		if !ok {
			return res, true, fmt.Errorf("append %s: the stream changed during the append", req.Stream)
		}
		st.version = version
		b.known.put(req.Stream, st)
		break
	}
	res.Version = st.version
	if req.IdempotencyKey != "" {
		if _, err := b.exec(ctx, tx, `INSERT INTO idempotency_keys (stream_id, key, version, position) VALUES (?, ?, ?, ?)`,
			req.Stream, req.IdempotencyKey, res.Version, res.Position); err != nil {
			return res, true, err
		}
	}
	return res, false, nil
}

// startAppend reads the record of the stream an append goes to and checks
// the append's expected version against it, creating the record (or
// starting the stream's next life) when the stream does not exist.
func (b *Backend) startAppend(ctx context.Context, tx *sqlx.Tx, req eventstore.AppendRequest, at int64) (st streamRecord, dirty bool, err error) {
	st, err = b.streamRecord(ctx, tx, req.Stream)
	if err != nil {
		return st, false, err
	}
	if st.state == tombstone {
		return st, false, eventstore.ErrStreamPurged
	}
	if err := req.Expected.Check(req.Stream, st.version); err != nil {
		return st, false, err
	}
	switch {
	case st.sk == 0:
		category := eventstore.Category(req.Stream)
		if _, err := b.exec(ctx, tx, sqlInsertCategory, category); err != nil {
			return st, true, err
		}
		r, err := b.exec(ctx, tx, sqlInsertStream, req.Stream, category, at, at)
		if err != nil {
			return st, true, err
		}
		if st.sk, err = r.LastInsertId(); err != nil {
			return st, true, fail(ctx, err)
		}
		if err := tx.QueryRowxContext(ctx, `SELECT category FROM streams WHERE sk = ?`, st.sk).Scan(&st.category); err != nil {
			return st, true, fail(ctx, err)
		}
	case st.state < 0:
		if _, err := b.exec(ctx, tx, sqlRestartStream, at, at, st.sk); err != nil {
			return st, true, err
		}
		st.state, st.version = 0, -1
	}
	return st, false, nil
}

// insertEvents writes the events of req after version st.version of the
// stream, and returns the version of the last. ok is false, and nothing
// written, when the stream is not at st.version. The first event's insert
// checks the stream; the rest go out in multi-row statements, as a group's
// do, and their IDs after them (eventids.go).
func (b *Backend) insertEvents(ctx context.Context, tx *sqlx.Tx, req eventstore.AppendRequest, st streamRecord, at int64, res *eventstore.AppendResult) (version int64, ok bool, err error) {
	version = st.version + 1
	var sk, life, category, recorded any = st.sk, st.life, st.category, at // boxed once for every event
	e := &req.Events[0]                                                    // not a copy: e.ID[:] would move it to the heap
	data, meta := nullIfEmpty(e.Data), nullIfEmpty(e.Metadata)
	var v any = version
	r, err := b.execStmt(ctx, tx.Tx.StmtContext(ctx, b.insertEvent.Stmt), sqlInsertEvent,
		e.ID[:], sk, life, v, category, e.Type, data, meta, recorded, int64(checksum(req.Stream, version, e.Type, data, meta)),
		sk, req.Stream, life, v)
	if err != nil {
		return 0, false, err
	}
	n, err := r.RowsAffected()
	switch {
	case err != nil:
		return 0, false, fail(ctx, err)
	case n == 0:
		return 0, false, nil
	}
	first, err := r.LastInsertId()
	if err != nil {
		return 0, false, fail(ctx, err)
	}
	var args []any
	for done := 1; done < len(req.Events); {
		n := batchSize(len(req.Events) - done) // after the first: see insertRows
		if args == nil {
			args = make([]any, 0, 10*n)
		}
		args = args[:0]
		for i := done; i < done+n; i++ {
			e := &req.Events[i]
			version++
			data, meta := nullIfEmpty(e.Data), nullIfEmpty(e.Metadata)
			args = append(args, e.ID[:], sk, life, version, category, e.Type, data, meta, recorded,
				int64(checksum(req.Stream, version, e.Type, data, meta)))
		}
		q := insertRows[n]
		r, err := b.execStmt(ctx, tx.Tx.StmtContext(ctx, b.prepared[q].Stmt), q, args...)
		if err != nil {
			return 0, false, err
		}
		last, err := r.LastInsertId()
		if err != nil {
			return 0, false, fail(ctx, err)
		}
		if want := first + int64(done+n-1); last != want {
			return 0, false, fmt.Errorf("append %s: event at position %d, want %d", req.Stream, last, want)
		}
		done += n
	}
	res.Position = first + int64(len(req.Events)-1)
	err = b.insertIDs(ctx, tx, len(req.Events), func(i int) (*uuid.UUID, int64) {
		return &req.Events[i].ID, first + int64(i)
	})
	if err != nil {
		return 0, false, err
	}
	return version, true, nil
}

// streamCache holds the records of the streams this Backend appended to
// last, so that an append to one of them need not read it: the insert
// checks in SQL that the stream is still where the cache says (see
// sqlInsertEvent), and the append reads the record when it is not (after a
// rollback, a deletion, or another process's append). Bounded: it starts
// over when full.
//
// A record is trusted, so that a group commit neither reads nor checks
// it, while nothing but this Backend's group commits has written the file
// since it was cached: each record carries the generation it was cached
// in, and the generation moves on at every other write transaction of
// this Backend (committed or not: Transact, DeleteStream, a prune, an
// append that failed) and whenever the file's PRAGMA data_version shows a
// commit of another connection (see [Backend.trustCache]). The writer
// lock orders those with the group commits that read and write records.
type streamCache struct {
	mu  sync.Mutex
	m   map[string]cachedStream
	gen uint64
}

type cachedStream struct {
	streamRecord
	gen uint64
}

const streamCacheSize = 4096

func (c *streamCache) get(stream string) (streamRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[stream]
	return st.streamRecord, ok
}

// trusted returns a stream's record if it is trusted.
func (c *streamCache) trusted(stream string) (streamRecord, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[stream]
	return st.streamRecord, ok && st.gen == c.gen
}

func (c *streamCache) put(stream string, st streamRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[stream]; !ok && len(c.m) >= streamCacheSize || c.m == nil {
		c.m = make(map[string]cachedStream, streamCacheSize)
	}
	c.m[stream] = cachedStream{st, c.gen}
}

// distrust ends the trust of every record cached so far.
func (c *streamCache) distrust() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}

// tombstone is the state of a purged stream's record.
const tombstone = -2

// streamRecord reads a stream's record; a stream without one has sk 0
// and version -1. A deleted or purged stream has version -1.
func (b *Backend) streamRecord(ctx context.Context, q sqlx.QueryerContext, stream string) (st streamRecord, err error) {
	start := b.logStart()
	if tx, ok := q.(*sqlx.Tx); ok {
		err = b.stmt(ctx, tx, sqlStreamState).QueryRowxContext(ctx, stream).Scan(&st.sk, &st.category, &st.life, &st.state, &st.version)
	} else {
		err = q.QueryRowxContext(ctx, sqlStreamState, stream).Scan(&st.sk, &st.category, &st.life, &st.state, &st.version)
	}
	if b.opts.LogSQL != nil {
		b.logSQL(ctx, sqlStreamState, []any{stream}, start, err)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return streamRecord{version: -1}, nil
	case err != nil:
		return st, fail(ctx, err)
	case st.state < 0:
		st.version = -1
	}
	return st, nil
}

// streamState returns a stream's current life and last version (-1 when
// it does not exist). A purged stream is ErrStreamPurged.
func (b *Backend) streamState(ctx context.Context, q sqlx.QueryerContext, stream string) (life, version int64, err error) {
	st, err := b.streamRecord(ctx, q, stream)
	if err != nil {
		return 0, 0, err
	}
	if st.state == tombstone {
		return st.life, -1, eventstore.ErrStreamPurged
	}
	return st.life, st.version, nil
}

// retried reports whether req repeats an earlier append of the stream's
// current life: every ID stored, in order, at consecutive versions. It
// returns that append's result. IDs that are stored but do not form such a
// retry are [eventstore.ErrDuplicateEvent].
func (b *Backend) retried(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, bool, error) {
	type found struct {
		stream        string
		life, version int64
		position      int64
		current       bool // in the stream's current life
	}
	byID := make(map[uuid.UUID]found, len(req.Events))
	for chunk := range slices.Chunk(req.Events, maxIDsPerQuery) {
		query, args := retryQuery(chunk)
		start := b.logStart()
		rows, err := b.reader.QueryContext(ctx, query, args...)
		b.logSQL(ctx, query, args, start, err)
		if err != nil {
			return eventstore.AppendResult{}, false, fail(ctx, err)
		}
		for rows.Next() {
			var (
				id                     []byte
				f                      found
				streamLife, streamVers sql.NullInt64
			)
			if err := rows.Scan(&id, &f.stream, &f.life, &f.version, &f.position, &streamLife, &streamVers); err != nil {
				rows.Close()
				return eventstore.AppendResult{}, false, fail(ctx, err)
			}
			f.current = streamLife.Valid && streamLife.Int64 == f.life && streamVers.Int64 >= 0
			key, err := uuid.FromBytes(id)
			if err != nil {
				rows.Close()
				return eventstore.AppendResult{}, false, err
			}
			byID[key] = f
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return eventstore.AppendResult{}, false, fail(ctx, err)
		}
	}
	if len(byID) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	var first, last found
	for i, e := range req.Events {
		f, ok := byID[e.ID]
		if !ok || f.stream != req.Stream || !f.current || (i > 0 && f.version != first.version+int64(i)) {
			return eventstore.AppendResult{}, false, eventstore.ErrDuplicateEvent
		}
		if i == 0 {
			first = f
		}
		last = f
	}
	return eventstore.AppendResult{Version: last.version, Position: last.position}, true, nil
}

// maxIDsPerQuery keeps a lookup by event IDs well under SQLite's limit on
// bound parameters, however many events one Append carries.
const maxIDsPerQuery = 500

func retryQuery(events []eventstore.Event) (string, []any) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	return byIDQuery(`e.id, s.id, e.life, e.version, e.position, s.life, CASE WHEN s.state = 0 THEN 0 ELSE -1 END`,
		`events e JOIN streams s ON s.sk = e.stream`, ids)
}

// DeleteStream implements [eventstore.Backend].
func (b *Backend) DeleteStream(ctx context.Context, stream string, expected eventstore.ExpectedVersion) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		st, err := b.streamRecord(ctx, tx, stream)
		if err != nil {
			return err
		}
		if err := expected.Check(stream, st.version); err != nil {
			return err
		}
		if st.version < 0 {
			return eventstore.ErrStreamNotFound
		}
		if _, err := b.exec(ctx, tx, sqlDeleteStream, st.sk); err != nil {
			return err
		}
		if _, err := b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ?`, stream); err != nil {
			return err
		}
		_, err = b.exec(ctx, tx, `DELETE FROM idempotency_keys WHERE stream_id = ?`, stream)
		return err
	})
}

// StreamVersion implements [eventstore.Backend].
func (b *Backend) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	_, version, err := b.streamState(ctx, b.reader, stream)
	if errors.Is(err, eventstore.ErrStreamPurged) {
		return -1, nil
	}
	return version, err
}

func (b *Backend) exec(ctx context.Context, ex sqlx.ExecerContext, query string, args ...any) (sql.Result, error) {
	if err := b.injected(query); err != nil {
		return nil, err
	}
	start := b.logStart()
	var r sql.Result
	var err error
	if tx, ok := ex.(*sqlx.Tx); ok && b.prepared[query] != nil {
		r, err = b.stmt(ctx, tx, query).ExecContext(ctx, args...)
	} else {
		r, err = ex.ExecContext(ctx, query, args...)
	}
	b.logSQL(ctx, query, args, start, err)
	return r, fail(ctx, err)
}

func (b *Backend) execStmt(ctx context.Context, st *sql.Stmt, query string, args ...any) (sql.Result, error) {
	if err := b.injected(query); err != nil {
		return nil, err
	}
	start := b.logStart()
	r, err := st.ExecContext(ctx, args...)
	b.logSQL(ctx, query, args, start, err)
	return r, fail(ctx, err)
}

// logStart returns the start time of a statement when statements are
// logged, and the zero time (at no cost) otherwise.
func (b *Backend) logStart() time.Time {
	if b.opts.LogSQL == nil {
		return time.Time{}
	}
	return time.Now()
}

func nullIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// injected returns the fault a test injects before a statement, if any.
func (b *Backend) injected(query string) error {
	if f := b.fault.Load(); f != nil {
		return (*f)(query)
	}
	return nil
}
