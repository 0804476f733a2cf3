package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
	"github.com/matryer/is"
)

func testVerify(t *testing.T, newBackend NewBackend) {
	t.Run("HealthyStore", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 5)...)
		b.appendOK("b-1", eventstore.Any, numbered("E", 3)...)
		b.is.NoErr(b.store.DeleteStream(b.ctx, "b-1", eventstore.Any))
		b.appendOK("b-1", eventstore.Any, numbered("E", 2)...) // a second life
		end := b.appendOK("c-1", eventstore.Any, numbered("E", 1)...).Position
		b.is.NoErr(b.store.DeleteStream(b.ctx, "c-1", eventstore.Any)) // deleted for good
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "a-1", 3, []byte(`{}`), nil))
		b.is.NoErr(b.store.SaveSnapshot(b.ctx, "b-1", 1, []byte(`{}`), nil))
		cp := b.backend
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "c", end, time.Now())) // at the end
		purged := b.appendOK("d-1", eventstore.Any, numbered("E", 2)...).Position
		_, err := b.store.PurgeStream(b.ctx, "d-1")
		b.is.NoErr(err)
		// Past the last event left, but not past the end of the log: the
		// last position given was a purged event's.
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "d", purged, time.Now()))
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.Equal(r.Problems, nil)
		b.is.True(r.OK())
		b.is.Equal(r.Events, int64(11))
		b.is.Equal(r.Streams, 2)
		b.is.Equal(r.Snapshots, 2)
		b.is.Equal(r.Checkpoints, 2)
		// The report says what it checked: every check ran, or says why
		// not.
		for _, check := range []eventstore.VerifyCheck{
			eventstore.VerifyIntegrity, eventstore.VerifyLog, eventstore.VerifyStreams,
			eventstore.VerifySnapshots, eventstore.VerifyCheckpoints,
		} {
			skipped := slices.ContainsFunc(r.Skipped, func(s string) bool { return strings.HasPrefix(s, string(check)+": ") })
			if slices.Contains(r.Checked, check) == skipped {
				t.Errorf("%s: checked %v, skipped %q", check, r.Checked, r.Skipped)
			}
		}
		b.is.True(slices.Contains(r.Checked, eventstore.VerifyLog))
		b.is.True(slices.Contains(r.Checked, eventstore.VerifyStreams))
		b.is.True(slices.Contains(r.Checked, eventstore.VerifySnapshots))
		b.is.True(slices.Contains(r.Checked, eventstore.VerifyCheckpoints))
	})

	t.Run("CheckpointPastEnd", func(t *testing.T) {
		b := setup(t, newBackend)
		cp := b.backend
		last := b.appendOK("a-1", eventstore.Any, numbered("E", 3)...).Position
		b.is.NoErr(cp.SaveCheckpoint(b.ctx, "ahead", last+6, time.Now()))
		r, err := b.store.Verify(b.ctx)
		b.is.NoErr(err)
		b.is.True(!r.OK())
		want := fmt.Sprintf("checkpoints: ahead: checkpoint at position %d, past the end of the log at %d", last+6, last)
		b.is.Equal(r.Problems, []string{want})
	})

	t.Run("IntegrityCheckFails", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		broken := errors.New("disk on fire")
		s := eventstore.New(integrityOf{Backend: newBackend(t), err: broken}, nil)
		defer s.Close()
		_, err := s.Append(t.Context(), "a-1", eventstore.Any, numbered("E", 2)...)
		is.NoErr(err)
		r, err := s.Verify(t.Context())
		is.True(errors.Is(err, broken))
		is.True(!r.OK()) // a check that could not run is never OK
		is.Equal(r.Problems, []string{"integrity: could not check: disk on fire"})
	})

	t.Run("IntegrityCheckFinds", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		s := eventstore.New(integrityOf{Backend: newBackend(t), result: "page 3: btree broken"}, nil)
		defer s.Close()
		r, err := s.Verify(t.Context())
		is.NoErr(err)
		is.True(!r.OK())
		is.Equal(r.Integrity, "page 3: btree broken")
		is.Equal(r.Problems, []string{"integrity: page 3: btree broken"})
	})

	t.Run("WrittenWhileVerifying", func(t *testing.T) {
		t.Parallel()
		is := is.New(t)
		w := &writeDuringList{Backend: newBackend(t)}
		s := eventstore.New(w, nil)
		defer s.Close()
		for _, stream := range []string{"a-1", "b-1"} {
			_, err := s.Append(t.Context(), stream, eventstore.Any, numbered("E", 3)...)
			is.NoErr(err)
		}
		r, err := s.Verify(t.Context())
		is.NoErr(err)
		is.NoErr(w.err)           // the writes during Verify
		is.Equal(r.Problems, nil) // a stream appended to or deleted after the log was read is no problem
		is.True(r.OK())
		is.Equal(r.Events, int64(6))
	})

	t.Run("NotRunIsNotOK", func(t *testing.T) {
		b := setup(t, newBackend)
		b.appendOK("a-1", eventstore.Any, numbered("E", 2)...)
		b.is.True(!eventstore.VerifyReport{}.OK())
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		r, err := b.store.Verify(ctx)
		b.is.True(errors.Is(err, context.Canceled))
		b.is.True(!r.OK())
		b.is.NoErr(b.store.Close())
		r, err = b.store.Verify(b.ctx)
		b.is.True(errors.Is(err, eventstore.ErrClosed))
		b.is.True(!r.OK())
	})
}

// integrityOf is a backend whose integrity check returns result and err,
// and which has none of the other optional capabilities of the backend it
// wraps.
type integrityOf struct {
	eventstore.Backend
	result string
	err    error
}

func (b integrityOf) CheckIntegrity(context.Context) (string, error) { return b.result, b.err }

// writeDuringList is a backend on which, the first time streams are
// listed, another writer appends to a-1 and deletes b-1: as Verify lists
// the streams after it has read the log, they have moved on meanwhile.
type writeDuringList struct {
	eventstore.Backend
	once sync.Once
	err  error // of the writes
}

func (b *writeDuringList) ListStreams(ctx context.Context, opts eventstore.ListOptions) iter.Seq2[eventstore.StreamInfo, error] {
	b.once.Do(func() {
		_, err := b.Backend.Append(ctx, eventstore.AppendRequest{
			Stream: "a-1", Expected: eventstore.Any, Time: time.Now().UTC(),
			Events: []eventstore.Event{{ID: uuid.New(), Type: "Late"}},
		})
		if err == nil {
			err = b.Backend.DeleteStream(ctx, "b-1", eventstore.Any)
		}
		b.err = err
	})
	return b.Backend.ListStreams(ctx, opts)
}
