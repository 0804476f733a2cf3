package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

const (
	sqlStreamState = `SELECT life, version FROM streams WHERE id = ?`

	sqlInsertEvent = `INSERT INTO events
	(id, stream_id, life, version, category, type, data, metadata, recorded_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// A stream row outlives DeleteStream (version -1), so an upsert: the
	// first append of a new life also sets its creation time.
	sqlUpsertStream = `INSERT INTO streams (id, category, life, version, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		version = excluded.version,
		updated_at = excluded.updated_at,
		created_at = CASE WHEN streams.version < 0 THEN excluded.created_at ELSE streams.created_at END`

	sqlDeleteStream = `UPDATE streams SET version = -1, life = life + 1 WHERE id = ?`

	sqlIdempotencyKey = `SELECT version, position FROM idempotency_keys WHERE stream_id = ? AND key = ?`
	sqlSavepoint      = `SAVEPOINT eventstore`
	sqlRelease        = `RELEASE eventstore`
	sqlRollbackTo     = `ROLLBACK TO eventstore`
)

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
	life, version, err := b.streamState(ctx, tx, req.Stream)
	if err != nil {
		return res, false, err
	}
	if err := req.Expected.Check(req.Stream, version); err != nil {
		return res, false, err
	}
	insert := tx.StmtxContext(ctx, b.insertEvent)
	category := eventstore.Category(req.Stream)
	at := req.Time.UnixNano()
	for _, e := range req.Events {
		version++
		r, err := b.execStmt(ctx, insert, sqlInsertEvent,
			e.ID[:], req.Stream, life, version, category, e.Type, nullIfEmpty(e.Data), nullIfEmpty(e.Metadata), at)
		if err != nil {
			return res, true, err
		}
		if res.Position, err = r.LastInsertId(); err != nil {
			return res, true, fail(ctx, err)
		}
	}
	res.Version = version
	if _, err := b.exec(ctx, tx, sqlUpsertStream, req.Stream, category, life, version, at, at); err != nil {
		return res, true, err
	}
	if req.IdempotencyKey != "" {
		if _, err := b.exec(ctx, tx, `INSERT INTO idempotency_keys (stream_id, key, version, position) VALUES (?, ?, ?, ?)`,
			req.Stream, req.IdempotencyKey, res.Version, res.Position); err != nil {
			return res, true, err
		}
	}
	return res, false, nil
}

// tombstone is the version column of a purged stream's row.
const tombstone = -2

// streamState returns a stream's current life and last version (-1 when
// it does not exist). A purged stream is ErrStreamPurged.
func (b *Backend) streamState(ctx context.Context, q sqlx.QueryerContext, stream string) (life, version int64, err error) {
	start := b.logStart()
	if tx, ok := q.(*sqlx.Tx); ok {
		err = b.stmt(ctx, tx, sqlStreamState).QueryRowxContext(ctx, stream).Scan(&life, &version)
	} else {
		err = q.QueryRowxContext(ctx, sqlStreamState, stream).Scan(&life, &version)
	}
	b.logSQL(ctx, sqlStreamState, []any{stream}, start, err)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, -1, nil
	case err != nil:
		return 0, 0, fail(ctx, err)
	case version == tombstone:
		return life, -1, eventstore.ErrStreamPurged
	}
	return life, version, nil
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
	args := make([]any, len(events))
	for i, e := range events {
		args[i] = e.ID[:]
	}
	query := `SELECT e.id, e.stream_id, e.life, e.version, e.position, s.life, s.version
	FROM events e LEFT JOIN streams s ON s.id = e.stream_id
	WHERE e.id IN (?` + strings.Repeat(", ?", len(args)-1) + `)`
	return query, args
}

// DeleteStream implements [eventstore.Backend].
func (b *Backend) DeleteStream(ctx context.Context, stream string, expected eventstore.ExpectedVersion) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		_, version, err := b.streamState(ctx, tx, stream)
		if err != nil && !errors.Is(err, eventstore.ErrStreamPurged) {
			return err
		}
		if err := expected.Check(stream, version); err != nil {
			return err
		}
		if version < 0 {
			return eventstore.ErrStreamNotFound
		}
		if _, err := b.exec(ctx, tx, sqlDeleteStream, stream); err != nil {
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

func (b *Backend) execStmt(ctx context.Context, st *sqlx.Stmt, query string, args ...any) (sql.Result, error) {
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
