package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// sqlCategoryOf is eventstore.Category in SQL: the stream ID up to its
// first '-'.
const sqlCategoryOf = `CASE WHEN instr(id, '-') > 0 THEN substr(id, 1, instr(id, '-') - 1) ELSE id END`

// sqlVersionOf is a stream's last version, from its record s: -1 when
// deleted or purged (see streams in schema.sql).
const sqlVersionOf = `CASE WHEN s.state < 0 THEN -1 ELSE max(s.version,
	coalesce((SELECT max(v.version) FROM events v WHERE v.stream = s.sk AND v.life = s.life), -1)) END`

// auditLimit bounds the findings one audit query returns: a report lists
// at most about a hundred problems.
const auditLimit = 101

// AuditStreams implements [eventstore.Auditor]. Besides the records, it
// recomputes every event's checksum (see schema.sql).
func (b *Backend) AuditStreams(ctx context.Context, problem func(string)) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	err := b.eachRow(ctx, func(rows *sql.Rows) error {
		var sk, n, first int64
		if err := rows.Scan(&sk, &n, &first); err != nil {
			return err
		}
		problem(fmt.Sprintf("stream key %d: %d events from position %d on, but no stream record", sk, n, first))
		return nil
	}, `SELECT stream, count(*), min(position) FROM events e
		WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.sk = e.stream)
		GROUP BY stream ORDER BY stream LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	err = b.eachRow(ctx, func(rows *sql.Rows) error {
		var id, want string
		var category sql.NullString
		if err := rows.Scan(&id, &category, &want); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s: stream record of category %q, but the stream ID's is %q", id, category.String, want))
		return nil
	}, `SELECT id, (SELECT name FROM stream_categories WHERE ck = streams.category) AS name, `+sqlCategoryOf+` FROM streams
		WHERE name IS NOT `+sqlCategoryOf+` ORDER BY id LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	err = b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			stream                                  string
			category, streamCategory                sql.NullString
			position, version, life, streamLife, st int64
		)
		if err := rows.Scan(&position, &stream, &version, &life, &category, &streamLife, &st, &streamCategory); err != nil {
			return err
		}
		at := fmt.Sprintf("%s@%d at position %d", stream, version, position)
		switch {
		case life > streamLife:
			problem(fmt.Sprintf("%s: life %d, but the stream is in life %d", at, life, streamLife))
		case life == streamLife && st < 0:
			problem(fmt.Sprintf("%s: life %d, the current life of the stream, which is deleted", at, life))
		}
		if category != streamCategory {
			problem(fmt.Sprintf("%s: category %q, but the stream's is %q", at, category.String, streamCategory.String))
		}
		return nil
	}, `SELECT e.position, s.id, e.version, e.life,
			(SELECT name FROM stream_categories WHERE ck = e.category), s.life, s.state,
			(SELECT name FROM stream_categories WHERE ck = s.category)
		FROM events e JOIN streams s ON s.sk = e.stream
		WHERE e.life > s.life OR (e.life = s.life AND s.state < 0) OR e.category <> s.category
		ORDER BY e.position LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	if err := b.auditIDs(ctx, problem); err != nil {
		return err
	}
	return b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			stream            string
			version, position int64
		)
		if err := rows.Scan(&position, &stream, &version); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s@%d at position %d: checksum mismatch: its type, data or metadata changed since it was written", stream, version, position))
		return nil
	}, `SELECT e.position, s.id, e.version
		FROM events e CROSS JOIN streams s ON s.sk = e.stream
		WHERE e.checksum <> eventstore_checksum(s.id, e.version, e.type, e.data, e.metadata)
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
			pruned                    sql.NullBool
		)
		if err := rows.Scan(&stream, &version, &life, &position, &streamLife, &streamVersion, &eventPosition, &pruned); err != nil {
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
			// Prune keeps the snapshot at the last version it removed.
			if !pruned.Bool {
				problem(at + ", but the log has no event at that version")
			}
		case eventPosition.Int64 != position:
			problem(fmt.Sprintf("%s records position %d, but %s@%d is at position %d", at, position, stream, version, eventPosition.Int64))
		}
		return nil
	}, `SELECT sn.stream_id, sn.version, sn.life, sn.position, s.life, `+sqlVersionOf+`, e.position, s.pruned
		FROM snapshots sn
		LEFT JOIN streams s ON s.id = sn.stream_id
		LEFT JOIN events e ON e.stream = s.sk AND e.life = sn.life AND e.version = sn.version
		ORDER BY sn.stream_id, sn.version`)
	return n, err
}

// LastPosition implements [eventstore.Auditor]: log_high_water keeps the
// highest position ever given once a purge has removed it.
func (b *Backend) LastPosition(ctx context.Context) (int64, error) {
	if err := b.checkOpen(); err != nil {
		return 0, err
	}
	var last int64
	err := b.reader.QueryRowContext(ctx, `SELECT max(
		coalesce((SELECT position FROM log_high_water), 0),
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
