package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
)

const snapshotCols = `sn.stream_id, sn.version, sn.position, sn.data, sn.metadata, sn.created_at`

// snapshotsOfLife are the snapshots of the stream's current life: one of
// an earlier life, which a healthy store never holds, is never loaded.
const snapshotsOfLife = ` FROM snapshots sn JOIN streams s ON s.id = sn.stream_id AND s.life = sn.life AND s.state = 0
	WHERE sn.stream_id = ?`

// SaveSnapshot implements [eventstore.Snapshotter]. The stream's state is
// read in the write transaction that stores the snapshot, which
// DeleteStream's cannot interleave with.
func (b *Backend) SaveSnapshot(ctx context.Context, s eventstore.Snapshot, keep int) error {
	return b.write(ctx, func(tx *sqlx.Tx) error {
		life, version, err := b.streamState(ctx, tx, s.StreamID)
		switch {
		case errors.Is(err, eventstore.ErrStreamPurged):
			return eventstore.ErrStreamNotFound
		case err != nil:
			return err
		case version < 0:
			return eventstore.ErrStreamNotFound
		case s.Version > version:
			return fmt.Errorf("%w: version %d is ahead of the stream (at %d)", eventstore.ErrInvalidArgument, s.Version, version)
		}
		var position int64
		const query = `SELECT position FROM events WHERE stream = (SELECT sk FROM streams WHERE id = ?) AND life = ? AND version = ?`
		start := b.logStart()
		err = tx.QueryRowxContext(ctx, query, s.StreamID, life, s.Version).Scan(&position)
		b.logSQL(ctx, query, []any{s.StreamID, life, s.Version}, start, err)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%s@%d: the stream's record has the version, but the log has no event at it (see Store.Verify)", s.StreamID, s.Version)
		case err != nil:
			return fail(ctx, err)
		}
		if s.Position > 0 && s.Position != position {
			return fmt.Errorf("%w: %s@%d is at position %d, not %d: the snapshot is of an earlier life", eventstore.ErrStreamNotFound, s.StreamID, s.Version, position, s.Position)
		}
		// Snapshots of an earlier life go: DeleteStream removes them, so
		// only a damaged file holds any.
		if _, err := b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ? AND life <> ?`, s.StreamID, life); err != nil {
			return err
		}
		if _, err := b.exec(ctx, tx, `INSERT OR REPLACE INTO snapshots (stream_id, life, version, position, data, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			s.StreamID, life, s.Version, position, nullIfEmpty(s.Data), nullIfEmpty(s.Metadata), s.CreatedAt.UnixNano()); err != nil {
			return err
		}
		if keep <= 0 {
			return nil
		}
		_, err = b.exec(ctx, tx, `DELETE FROM snapshots WHERE stream_id = ? AND version < (
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
	query, args := `SELECT `+snapshotCols+snapshotsOfLife+` ORDER BY sn.version DESC LIMIT 1`, []any{stream}
	if version >= 0 {
		query, args = `SELECT `+snapshotCols+snapshotsOfLife+` AND sn.version = ?`, []any{stream, version}
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
	return queryPage(ctx, b, nil, scanSnapshot, `SELECT `+snapshotCols+snapshotsOfLife+` ORDER BY sn.version`, stream)
}

func scanSnapshot(rows *sql.Rows) (eventstore.Snapshot, error) {
	var s eventstore.Snapshot
	var data, meta sql.RawBytes
	var at int64
	if err := rows.Scan(&s.StreamID, &s.Version, &s.Position, &data, &meta, &at); err != nil {
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
