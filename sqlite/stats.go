package sqlite

import (
	"context"
	"database/sql"
	"os"
	"time"
)

// FileStats describes a store file, for the eventstore command and for
// monitoring.
type FileStats struct {
	FileBytes      int64     // the database file (without its WAL)
	SchemaVersion  int       // the store's schema version (see [SchemaVersion])
	Events         int64     // events in the log
	LastPosition   int64     // highest position ever given (0: none)
	Streams        int64     // streams that exist
	DeletedStreams int64     // stream IDs deleted or purged
	Snapshots      int64     // snapshots stored
	FirstEvent     time.Time // when the oldest event in the log was recorded
	LastEvent      time.Time // when the newest was
	// FreeBytes is the room of removed events still in the file: later
	// writes reuse it, and [Backend.ReclaimSpace] gives it back.
	FreeBytes int64
	// IncrementalVacuum reports that the file was made for
	// [Backend.ReclaimSpace] (auto_vacuum=INCREMENTAL), as every file made
	// since this release is; 'eventstore vacuum' converts an older one.
	IncrementalVacuum bool
}

// FileStats counts what the file holds. It reads; it does not write.
func (b *Backend) FileStats(ctx context.Context) (FileStats, error) {
	var st FileStats
	if err := b.checkOpen(); err != nil {
		return st, err
	}
	if fi, err := os.Stat(b.path); err == nil {
		st.FileBytes = fi.Size()
	}
	var first, last sql.NullInt64
	row := b.reader.QueryRowxContext(ctx, `SELECT
		(SELECT count(*) FROM events),
		max(coalesce((SELECT max(position) FROM events), 0), coalesce((SELECT position FROM log_high_water), 0)),
		(SELECT count(*) FROM streams WHERE state = 0),
		(SELECT count(*) FROM streams WHERE state < 0),
		(SELECT count(*) FROM snapshots),
		(SELECT recorded_at FROM events ORDER BY position LIMIT 1),
		(SELECT recorded_at FROM events ORDER BY position DESC LIMIT 1),
		(SELECT freelist_count FROM pragma_freelist_count()) * (SELECT page_size FROM pragma_page_size()),
		(SELECT auto_vacuum FROM pragma_auto_vacuum()) = 2`)
	if err := row.Scan(&st.Events, &st.LastPosition, &st.Streams, &st.DeletedStreams, &st.Snapshots, &first, &last,
		&st.FreeBytes, &st.IncrementalVacuum); err != nil {
		return st, fail(ctx, err)
	}
	var err error
	if st.SchemaVersion, err = readSchemaVersion(ctx, b.reader); err != nil {
		return st, fail(ctx, err)
	}
	if first.Valid {
		st.FirstEvent, st.LastEvent = time.Unix(0, first.Int64).UTC(), time.Unix(0, last.Int64).UTC()
	}
	return st, nil
}
