package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// sqlCategoryOf is eventstore.Category in SQL: the stream ID up to its
// first '-'.
const sqlCategoryOf = `CASE WHEN instr(id, '-') > 0 THEN substr(id, 1, instr(id, '-') - 1) ELSE id END`

// auditLimit bounds the findings one audit query returns: a report lists
// at most about a hundred problems.
const auditLimit = 101

// AuditStreams implements [eventstore.Auditor].
func (b *Backend) AuditStreams(ctx context.Context, problem func(string)) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	err := b.eachRow(ctx, func(rows *sql.Rows) error {
		var stream string
		var n, first int64
		if err := rows.Scan(&stream, &n, &first); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s: %d events from position %d on, but no stream record", stream, n, first))
		return nil
	}, `SELECT stream_id, count(*), min(position) FROM events e
		WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.id = e.stream_id)
		GROUP BY stream_id ORDER BY stream_id LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	err = b.eachRow(ctx, func(rows *sql.Rows) error {
		var id, category, want string
		if err := rows.Scan(&id, &category, &want); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s: stream record of category %q, but the stream ID's is %q", id, category, want))
		return nil
	}, `SELECT id, category, `+sqlCategoryOf+` FROM streams WHERE category <> `+sqlCategoryOf+` ORDER BY id LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	return b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			stream, category, streamCategory          string
			position, version, life, streamLife, vers int64
		)
		if err := rows.Scan(&position, &stream, &version, &life, &category, &streamLife, &vers, &streamCategory); err != nil {
			return err
		}
		at := fmt.Sprintf("%s@%d at position %d", stream, version, position)
		switch {
		case life > streamLife:
			problem(fmt.Sprintf("%s: life %d, but the stream is in life %d", at, life, streamLife))
		case life == streamLife && vers < 0:
			problem(fmt.Sprintf("%s: life %d, the current life of the stream, which is deleted", at, life))
		}
		if category != streamCategory {
			problem(fmt.Sprintf("%s: category %q, but the stream's is %q", at, category, streamCategory))
		}
		return nil
	}, `SELECT e.position, e.stream_id, e.version, e.life, e.category, s.life, s.version, s.category
		FROM events e JOIN streams s ON s.id = e.stream_id
		WHERE e.life > s.life OR (e.life = s.life AND s.version < 0) OR e.category <> s.category
		ORDER BY e.position LIMIT ?`, auditLimit)
}

// AuditSnapshots implements [eventstore.Auditor].
func (b *Backend) AuditSnapshots(ctx context.Context, problem func(string)) (int, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	n := 0
	err := b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			stream                    string
			version, life, position   int64
			streamLife, streamVersion sql.NullInt64
			eventPosition             sql.NullInt64
		)
		if err := rows.Scan(&stream, &version, &life, &position, &streamLife, &streamVersion, &eventPosition); err != nil {
			return err
		}
		n++
		at := fmt.Sprintf("%s: snapshot at version %d", stream, version)
		switch {
		case !streamLife.Valid:
			problem(at + ", but the stream does not exist")
		case streamVersion.Int64 < 0:
			problem(at + ", but the stream is deleted")
		case life != streamLife.Int64:
			problem(fmt.Sprintf("%s of life %d, but the stream is in life %d", at, life, streamLife.Int64))
		case version > streamVersion.Int64:
			problem(fmt.Sprintf("%s, but the stream is at %d", at, streamVersion.Int64))
		case !eventPosition.Valid:
			problem(at + ", but the log has no event at that version")
		case eventPosition.Int64 != position:
			problem(fmt.Sprintf("%s records position %d, but %s@%d is at position %d", at, position, stream, version, eventPosition.Int64))
		}
		return nil
	}, `SELECT sn.stream_id, sn.version, sn.life, sn.position, s.life, s.version, e.position
		FROM snapshots sn
		LEFT JOIN streams s ON s.id = sn.stream_id
		LEFT JOIN events e ON e.stream_id = sn.stream_id AND e.life = sn.life AND e.version = sn.version
		ORDER BY sn.stream_id, sn.version`)
	return n, err
}

// LastPosition implements [eventstore.Auditor]: AUTOINCREMENT keeps the
// highest position ever given in sqlite_sequence, even once it is purged.
func (b *Backend) LastPosition(ctx context.Context) (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	var last int64
	err := b.reader.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
		coalesce((SELECT max(position) FROM events), 0))`).Scan(&last)
	return last, fail(ctx, err)
}

// eachRow runs query on the reader pool and calls fn for each row.
func (b *Backend) eachRow(ctx context.Context, fn func(*sql.Rows) error, query string, args ...any) error {
	start := b.logStart()
	rows, err := b.reader.QueryContext(ctx, query, args...)
	if err != nil {
		b.logSQL(ctx, query, args, start, err)
		return fail(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fail(ctx, err)
		}
	}
	err = rows.Err()
	b.logSQL(ctx, query, args, start, err)
	return fail(ctx, err)
}
