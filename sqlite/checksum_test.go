package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-es/eventstore"
	"github.com/jmoiron/sqlx"
	"github.com/matryer/is"
)

// TestChecksum_FlippedByte flips one byte of an event's payload in a
// store file, with plain SQL as a failing card or a hand edit would: Verify
// reports it, naming the stream and version, and a read with
// Options.VerifyChecksums fails with ErrChecksum.
func TestChecksum_FlippedByte(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	_, err = s.Append(ctx, "meter-7", eventstore.NoStream,
		eventstore.Event{Type: "Read", Data: []byte(`{"kwh":10}`)},
		eventstore.Event{Type: "Read", Data: []byte(`{"kwh":12}`), Metadata: []byte(`{"by":"x"}`)})
	is.NoErr(err)
	r, err := s.Verify(ctx)
	is.NoErr(err)
	is.True(r.OK())
	is.NoErr(s.Close())

	db, err := sqlx.Open("sqlite", path)
	is.NoErr(err)
	// "12" becomes "13": one byte, in the blob.
	_, err = db.Exec(`UPDATE events SET data = CAST(replace(CAST(data AS TEXT), '12', '13') AS BLOB) WHERE version = 1`)
	is.NoErr(err)
	is.NoErr(db.Close())

	b, err = Open(path, nil)
	is.NoErr(err)
	s = eventstore.New(b, nil)
	r, err = s.Verify(ctx)
	is.NoErr(err)
	is.True(!r.OK())
	is.Equal(len(r.Problems), 1)
	is.True(strings.Contains(r.Problems[0], "meter-7@1 at position 2: checksum mismatch"))
	for e, err := range s.ReadStream(ctx, "meter-7", eventstore.ReadOptions{}) {
		is.NoErr(err) // without VerifyChecksums, reads do not check
		if e.Version == 1 {
			is.Equal(string(e.Data), `{"kwh":13}`)
		}
	}
	is.NoErr(s.Close())

	b, err = Open(path, &Options{VerifyChecksums: true})
	is.NoErr(err)
	s = eventstore.New(b, nil)
	defer s.Close()
	var got []int64
	var readErr error
	for e, err := range s.ReadStream(ctx, "meter-7", eventstore.ReadOptions{}) {
		if err != nil {
			readErr = err
			break
		}
		got = append(got, e.Version)
	}
	is.True(errors.Is(readErr, ErrChecksum))
	is.True(strings.Contains(readErr.Error(), "meter-7@1"))
	is.Equal(got, []int64(nil)) // the page that holds it fails as a whole
	for _, err := range s.ReadAll(ctx, eventstore.ReadOptions{}, eventstore.Filter{}) {
		readErr = err
		break
	}
	is.True(errors.Is(readErr, ErrChecksum))
}

// TestChecksum_Definition pins the checksum to the bytes schema.sql
// defines, so that other tools can compute it.
func TestChecksum_Definition(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	// stream "a-1", version 2, type "T", data "{}", no metadata
	const want = 0x14a10346 // computed apart from this package, from the definition
	got := checksum("a-1", 2, "T", []byte("{}"), nil)
	if got != want {
		t.Errorf("checksum %#x, want %#x", got, want)
	}
	is.Equal(checksum("a-1", 2, "T", nil, nil), checksum("a-1", 2, "T", []byte{}, []byte{})) // empty is NULL
	is.True(checksum("a-1", 2, "T", []byte("{}"), nil) != checksum("a-1", 2, "T", nil, []byte("{}")))
	is.True(checksum("a-1", 2, "T", nil, nil) != checksum("a-1", 3, "T", nil, nil))
	is.True(checksum("a-", 2, "1T", nil, nil) != checksum("a-1", 2, "T", nil, nil))
}

// TestPrunedStream_CarriesOn removes every event of a stream's current
// life the way schema.sql says a prune (retention) must, with plain SQL:
// the stream keeps its version, later appends continue from it, and no
// position is handed out again.
func TestPrunedStream_CarriesOn(t *testing.T) {
	t.Parallel()
	is := is.New(t)
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), "events.db"), nil)
	is.NoErr(err)
	s := eventstore.New(b, nil)
	defer s.Close()
	e := eventstore.Event{Type: "E"}
	_, err = s.Append(ctx, "m-1", eventstore.NoStream, e, e, e)
	is.NoErr(err)
	last, err := s.Append(ctx, "m-1", eventstore.Exact(2), e, e)
	is.NoErr(err)
	is.Equal(last.Version, int64(4))

	tx, err := b.writer.Beginx()
	is.NoErr(err)
	for _, q := range []string{
		`UPDATE streams SET version = 4, updated_at = (SELECT max(recorded_at) FROM events) WHERE id = 'm-1'`,
		`INSERT INTO log_high_water (id, position) SELECT 1, max(position) FROM events WHERE true
			ON CONFLICT (id) DO UPDATE SET position = max(position, excluded.position)`,
		`DELETE FROM events WHERE stream = (SELECT sk FROM streams WHERE id = 'm-1')`,
	} {
		_, err := tx.Exec(q)
		is.NoErr(err)
	}
	is.NoErr(tx.Commit())

	v, err := s.StreamVersion(ctx, "m-1")
	is.NoErr(err)
	is.Equal(v, int64(4))
	for _, err := range s.ReadStream(ctx, "m-1", eventstore.ReadOptions{}) {
		is.NoErr(err) // no events, but the stream exists
	}
	for info, err := range s.ListStreams(ctx, eventstore.ListOptions{}) {
		is.NoErr(err)
		is.Equal(info.Version, int64(4))
	}
	res, err := s.Append(ctx, "m-1", eventstore.Exact(4), e)
	is.NoErr(err)
	is.Equal(res.Version, int64(5))
	is.True(res.Position > last.Position)
}
