package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

var _ eventstore.Snapshotter = (*Backend)(nil)

const snapshotCols = `stream_id, version, data, metadata, created_at`

// SaveSnapshot implements [eventstore.Snapshotter].
func (b *Backend) SaveSnapshot(ctx context.Context, s eventstore.Snapshot, keep int) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		if _, err := b.exec(ctx, tx, `INSERT OR REPLACE INTO snapshots (`+snapshotCols+`) VALUES (?, ?, ?, ?, ?)`,
			s.StreamID, s.Version, nullIfEmpty(s.Data), nullIfEmpty(s.Metadata), s.CreatedAt.UnixNano()); err != nil {
			return err
		}
		if keep <= 0 {
			return nil
		}
		_, err := b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ? AND version < (
			SELECT min(version) FROM (SELECT version FROM snapshots WHERE stream_id = ? ORDER BY version DESC LIMIT ?))`,
			s.StreamID, s.StreamID, keep)
		return err
	})
}

// LoadSnapshot implements [eventstore.Snapshotter].
func (b *Backend) LoadSnapshot(ctx context.Context, stream string, version int64) (eventstore.Snapshot, error) {
	if err := b.checkOpen(); err != nil {
		return eventstore.Snapshot{}, err
	}
	query, args := `SELECT `+snapshotCols+` FROM snapshots WHERE stream_id = ? ORDER BY version DESC LIMIT 1`, []any{stream}
	if version >= 0 {
		query, args = `SELECT `+snapshotCols+` FROM snapshots WHERE stream_id = ? AND version = ?`, []any{stream, version}
	}
	list, err := queryPage(ctx, b, nil, scanSnapshot, query, args...)
	if err != nil {
		return eventstore.Snapshot{}, err
	}
	if len(list) == 0 {
		return eventstore.Snapshot{}, eventstore.ErrSnapshotNotFound
	}
	return list[0], nil
}

// ListSnapshots implements [eventstore.Snapshotter].
func (b *Backend) ListSnapshots(ctx context.Context, stream string) ([]eventstore.Snapshot, error) {
	if err := b.checkOpen(); err != nil {
		return nil, err
	}
	return queryPage(ctx, b, nil, scanSnapshot, `SELECT `+snapshotCols+` FROM snapshots WHERE stream_id = ? ORDER BY version`, stream)
}

func scanSnapshot(rows *sql.Rows) (eventstore.Snapshot, error) {
	var s eventstore.Snapshot
	var data, meta sql.RawBytes
	var at int64
	if err := rows.Scan(&s.StreamID, &s.Version, &data, &meta, &at); err != nil {
		return s, err
	}
	s.Data, s.Metadata, s.CreatedAt = clone(data), clone(meta), time.Unix(0, at).UTC()
	return s, nil
}

// DeleteSnapshots implements [eventstore.Snapshotter].
func (b *Backend) DeleteSnapshots(ctx context.Context, stream string, version int64) (int, error) {
	var n int64
	err := b.write(ctx, func(tx *sqlx.Tx) error {
		query, args := `DELETE FROM snapshots WHERE stream_id = ?`, []any{stream}
		if version >= 0 {
			query, args = query+` AND version = ?`, append(args, version)
		}
		r, err := b.exec(ctx, tx, query, args...)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	return int(n), err
}
