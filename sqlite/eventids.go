package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Event IDs are stored in event_ids, keyed by an integer, and in
// event_ids_shared when two IDs share a key (schema.sql, migration 9).
// Appends insert their rows here; a trigger deletes them with their
// events.

const (
	// sqlTryInsertID stores an ID's key unless another ID holds it.
	sqlTryInsertID = `INSERT INTO event_ids (k, position) VALUES (?, ?) ON CONFLICT (k) DO NOTHING`
	// sqlIDOfKey is the ID of the event that holds a key.
	sqlIDOfKey = `SELECT e.id FROM event_ids i JOIN events e ON e.position = i.position WHERE i.k = ?`
	// sqlInsertSharedID stores an ID whose key another ID holds; a second
	// event with the ID fails its primary key (a duplicate).
	sqlInsertSharedID = `INSERT INTO event_ids_shared (id, k, position) VALUES (?, ?, ?)`
)

// insertIDRows are the multi-row inserts of keys, by size, as insertRows
// are of events.
var insertIDRows = func() map[int]string {
	m := map[int]string{}
	for _, n := range append([]int{1}, rowBatches...) {
		q := `INSERT INTO event_ids (k, position) VALUES (?, ?)`
		for range n - 1 {
			q += `, (?, ?)`
		}
		m[n] = q
	}
	return m
}()

// idPath are the statements that store IDs, prepared at Open.
func idPath() []string {
	qs := []string{sqlTryInsertID, sqlIDOfKey, sqlInsertSharedID}
	for _, q := range insertIDRows {
		qs = append(qs, q)
	}
	return qs
}

// idKey is an event ID's key in event_ids: for a UUID of version 7 (the
// high 4 bits of its seventh byte are 7) its first 8 bytes, big-endian, so
// that IDs made one after another get growing keys; for any other ID
// those 8 bytes XOR its last 8.
func idKey(id *uuid.UUID) int64 {
	hi := binary.BigEndian.Uint64(id[:8])
	if id[6]>>4 == 7 {
		return int64(hi)
	}
	return int64(hi ^ binary.BigEndian.Uint64(id[8:]))
}

// The key is a SQL function too, eventstore_id_key(id), for the migration
// that fills event_ids, for the trigger that deletes from it, and for
// Verify. An ID of another length than 16 bytes (a file written by hand)
// is cut or padded with zeros to 16.
func init() {
	err := msqlite.RegisterDeterministicScalarFunction("eventstore_id_key", 1,
		func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			var id uuid.UUID
			switch v := args[0].(type) {
			case []byte:
				copy(id[:], v)
			case string:
				copy(id[:], v)
			case nil:
				return nil, nil
			default:
				return nil, fmt.Errorf("eventstore_id_key: want a blob, got %T", args[0])
			}
			return idKey(&id), nil
		})
	if err != nil {
		panic(err)
	}
}

// insertIDs stores the IDs of n events just inserted: at(i) is the ID and
// position of the i-th. Keys go out in multi-row statements; a statement
// that finds a key held (an ID stored before, or another ID of the same
// key) is undone by SQLite and its rows are stored one by one. An ID
// stored before is [eventstore.ErrDuplicateEvent].
func (b *Backend) insertIDs(ctx context.Context, tx *sqlx.Tx, n int, at func(i int) (*uuid.UUID, int64)) error {
	args := make([]any, 0, 2*min(n, rowBatches[0]))
	for done := 0; done < n; {
		m := batchSize(n - done)
		args = args[:0]
		for i := done; i < done+m; i++ {
			id, position := at(i)
			args = append(args, idKey(id), position)
		}
		q := insertIDRows[m]
		_, err := b.execStmt(ctx, tx.Tx.StmtContext(ctx, b.prepared[q].Stmt), q, args...)
		if err != nil && keyHeld(err) {
			for i := done; i < done+m; i++ {
				id, position := at(i)
				if err = b.insertID(ctx, tx, id, position); err != nil {
					break
				}
			}
		}
		if err != nil {
			return err
		}
		done += m
	}
	return nil
}

// insertID stores one ID whose key may be held.
func (b *Backend) insertID(ctx context.Context, tx *sqlx.Tx, id *uuid.UUID, position int64) error {
	k := idKey(id)
	r, err := b.exec(ctx, tx, sqlTryInsertID, k, position)
	if err != nil {
		return err
	}
	if n, err := r.RowsAffected(); err != nil || n == 1 {
		return fail(ctx, err)
	}
	var held []byte
	if err := b.stmt(ctx, tx, sqlIDOfKey).QueryRowxContext(ctx, k).Scan(&held); err != nil {
		return fmt.Errorf("event ID %s: key %d: %w", id, k, fail(ctx, err))
	}
	if bytes.Equal(held, id[:]) {
		return fmt.Errorf("%w: event ID %s is stored", eventstore.ErrDuplicateEvent, id)
	}
	_, err = b.exec(ctx, tx, sqlInsertSharedID, id[:], k, position)
	return err // a duplicate: translate makes it ErrDuplicateEvent
}

// keyHeld reports whether err is the primary key of event_ids failing.
func keyHeld(err error) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// byIDQuery selects, with cols, the events among IDs that are stored,
// through event_ids and event_ids_shared; a table or join named e must
// be the events.
func byIDQuery(cols, from string, ids []uuid.UUID) (string, []any) {
	n := len(ids)
	args := make([]any, 0, 3*n)
	for i := range ids {
		args = append(args, idKey(&ids[i]))
	}
	for i := range ids {
		args = append(args, ids[i][:])
	}
	for i := range ids {
		args = append(args, ids[i][:])
	}
	list := "(?" + strings.Repeat(", ?", n-1) + ")"
	return `SELECT ` + cols + ` FROM ` + from + `
	WHERE e.position IN (SELECT position FROM event_ids WHERE k IN ` + list + `
		UNION ALL SELECT position FROM event_ids_shared WHERE id IN ` + list + `)
	AND e.id IN ` + list, args
}

// auditIDs reports events whose ID is not stored as schema.sql says, rows
// of event_ids or event_ids_shared that name no such event, and IDs stored
// twice.
func (b *Backend) auditIDs(ctx context.Context, problem func(string)) error {
	err := b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			stream            string
			version, position int64
			id                []byte
		)
		if err := rows.Scan(&position, &stream, &version, &id); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s@%d at position %d: its event ID %x is not in event_ids", stream, version, position, id))
		return nil
	}, `SELECT e.position, s.id, e.version, e.id FROM events e JOIN streams s ON s.sk = e.stream
		WHERE NOT EXISTS (SELECT 1 FROM event_ids i WHERE i.k = eventstore_id_key(e.id) AND i.position = e.position)
		AND NOT EXISTS (SELECT 1 FROM event_ids_shared h WHERE h.id = e.id AND h.position = e.position)
		ORDER BY e.position LIMIT ?`, auditLimit)
	if err != nil {
		return err
	}
	return b.eachRow(ctx, func(rows *sql.Rows) error {
		var (
			table, what string
			k, position int64
		)
		if err := rows.Scan(&table, &k, &position, &what); err != nil {
			return err
		}
		problem(fmt.Sprintf("%s: key %d at position %d: %s", table, k, position, what))
		return nil
	}, `SELECT 'event_ids', i.k, i.position, CASE WHEN e.position IS NULL THEN 'no event there' ELSE 'the event there has another key' END
		FROM event_ids i LEFT JOIN events e ON e.position = i.position
		WHERE e.position IS NULL OR eventstore_id_key(e.id) <> i.k
	UNION ALL
	SELECT 'event_ids_shared', h.k, h.position, CASE WHEN e.position IS NULL THEN 'no event there' ELSE 'the event there has another ID' END
		FROM event_ids_shared h LEFT JOIN events e ON e.position = h.position
		WHERE e.position IS NULL OR e.id <> h.id OR h.k <> eventstore_id_key(h.id)
	UNION ALL
	SELECT 'event_ids_shared', h.k, h.position, 'its key is not in event_ids'
		FROM event_ids_shared h WHERE NOT EXISTS (SELECT 1 FROM event_ids i WHERE i.k = h.k)
	UNION ALL
	SELECT 'event_ids_shared', h.k, h.position, 'its ID is stored in event_ids too, at position ' || i.position
		FROM event_ids_shared h JOIN event_ids i ON i.k = h.k JOIN events e ON e.position = i.position
		WHERE e.id = h.id
	LIMIT ?`, auditLimit)
}
