package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxStreamIDLen is the longest stream ID, in bytes.
const MaxStreamIDLen = 512

// MaxTypeLen is the longest event type, in bytes.
const MaxTypeLen = 512

// Event is an event to append.
type Event struct {
	// ID identifies the event across the whole store. The zero UUID lets the
	// store assign a UUIDv7. Supply your own IDs to make retries idempotent:
	// see [Store.Append].
	ID uuid.UUID
	// Type names the kind of event, e.g. "AccountOpened". Required.
	Type string
	// Data is the payload, JSON by convention. It may be empty.
	Data []byte
	// Metadata is optional: correlation IDs, the user who acted, and the like.
	Metadata []byte
}

// RecordedEvent is an event as it was stored.
type RecordedEvent struct {
	ID       uuid.UUID
	StreamID string
	// Version is the event's 0-based index in its stream.
	Version int64
	// Position is the event's place in the global log: at least 1, strictly
	// increasing in commit order, never reused.
	Position int64
	Type     string
	Data     []byte // nil when empty
	Metadata []byte // nil when empty
	// RecordedAt is when the Append that wrote the event ran, in UTC. All the
	// events of one Append share it.
	RecordedAt time.Time
}

// ExpectedVersion is the optimistic concurrency check of an Append or a
// DeleteStream: what the caller believes the stream's last version is.
// Use [Any], [NoStream], [StreamExists] or [Exact].
type ExpectedVersion int64

const (
	// Any skips the check.
	Any ExpectedVersion = -2
	// NoStream requires that the stream does not exist (or was deleted).
	NoStream ExpectedVersion = -1
	// StreamExists requires that the stream exists, at any version.
	StreamExists ExpectedVersion = -4
)

// Exact requires that the stream's last version is v. Exact(-1) is
// [NoStream], so the version that [Store.StreamVersion] reports for a
// missing stream can be passed straight back; any v below -1 yields an
// ExpectedVersion that Append refuses with [ErrInvalidArgument].
func Exact(v int64) ExpectedVersion {
	if v < -1 {
		return ExpectedVersion(-3) // invalid on purpose: no constant has it
	}
	return ExpectedVersion(v)
}

// String returns "any", "no stream", "stream exists" or the exact version.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	if e >= 0 {
		return fmt.Sprintf("%d", int64(e))
	}
	return fmt.Sprintf("invalid(%d)", int64(e))
}

// valid reports whether e is one of the constants or an exact version.
func (e ExpectedVersion) valid() bool {
	return e >= 0 || e == Any || e == NoStream || e == StreamExists
}

// Check compares e with a stream's actual last version (-1 when the stream
// does not exist). It returns nil when they agree and a
// [*VersionConflictError] otherwise. Backends use it so that every backend
// decides conflicts the same way.
func (e ExpectedVersion) Check(stream string, actual int64) error {
	ok := false
	switch {
	case e == Any:
		ok = true
	case e == NoStream:
		ok = actual < 0
	case e == StreamExists:
		ok = actual >= 0
	case e >= 0:
		ok = int64(e) == actual
	}
	if ok {
		return nil
	}
	return &VersionConflictError{Stream: stream, Expected: e, Actual: actual}
}

// AppendResult is what a successful Append returns.
type AppendResult struct {
	Version  int64 // version of the last event appended (5 events into a new stream: 4)
	Position int64 // global position of the last event appended
}

// ReadOptions select a range of a stream or of the global log.
// The zero value reads everything forward.
type ReadOptions struct {
	// From is where to start, inclusive: a stream version for ReadStream, a
	// global position for ReadAll. Backward with From 0 (the zero value) starts
	// at the end, as does any From past the end, up to math.MaxInt64;
	// forward, a From past the end reads nothing.
	From int64
	// Backward reads from From down towards the start.
	Backward bool
	// Limit is the most events to yield; 0 means no limit, as does any
	// limit above the number of events, up to math.MaxInt.
	Limit int
}

func (o ReadOptions) validate() error {
	if o.From < 0 {
		return invalidf("read from %d: must be >= 0", o.From)
	}
	if o.Limit < 0 {
		return invalidf("read limit %d: must be >= 0", o.Limit)
	}
	return nil
}

// ListOptions select the streams that ListStreams yields, in ascending order
// of stream ID. Prefix, Category and After are at most [MaxStreamIDLen]
// bytes, as stream IDs are; a Limit above the number of streams, up to
// math.MaxInt, is no limit.
type ListOptions struct {
	Prefix   string // only stream IDs with this prefix
	Category string // only streams of this category (see [Category])
	After    string // paging: only stream IDs sorted strictly after this one
	Limit    int    // the most streams to yield; 0 means no limit
}

// validate refuses a negative Limit, and a Prefix, Category or After
// longer than any stream ID ([MaxStreamIDLen]), which can only be a
// mistake.
func (o ListOptions) validate() error {
	if o.Limit < 0 {
		return invalidf("list limit %d: must be >= 0", o.Limit)
	}
	return firstError(
		atMost("list prefix length", len(o.Prefix), MaxStreamIDLen),
		atMost("list category length", len(o.Category), MaxStreamIDLen),
		atMost("list after length", len(o.After), MaxStreamIDLen),
	)
}

// StreamInfo describes a live stream.
type StreamInfo struct {
	ID        string
	Version   int64     // version of the last event
	CreatedAt time.Time // when the first event was recorded
	UpdatedAt time.Time // when the last event was recorded
}

// Category returns the category of a stream: the part of its ID before the
// first '-', or the whole ID when it has none. "account-123" is in category
// "account"; so is "account". This is the Message DB convention.
func Category(stream string) string {
	if i := strings.IndexByte(stream, '-'); i >= 0 {
		return stream[:i]
	}
	return stream
}

// CardinalID returns the part of a stream ID after the first '-' up to the
// first '+' after it: "account-123+alice" yields "123". A stream ID without
// '-' has an empty cardinal ID.
func CardinalID(stream string) string {
	i := strings.IndexByte(stream, '-')
	if i < 0 {
		return ""
	}
	id := stream[i+1:]
	if j := strings.IndexByte(id, '+'); j >= 0 {
		id = id[:j]
	}
	return id
}

// ValidateStreamID returns an error matching [ErrInvalidArgument] unless id
// is a valid stream ID: non-empty UTF-8, at most [MaxStreamIDLen] bytes,
// without control characters.
func ValidateStreamID(id string) error {
	return validateName("stream ID", id, MaxStreamIDLen)
}

func validateType(t string) error {
	return validateName("event type", t, MaxTypeLen)
}

func validateName(what, s string, max int) error {
	if s == "" {
		return invalidf("empty %s", what)
	}
	if len(s) > max {
		return invalidf("%s of %d bytes: the limit is %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return invalidf("%s %q is not valid UTF-8", what, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return invalidf("%s %q contains a control character", what, s)
		}
	}
	return nil
}

// Append writes events to the end of a stream, atomically: all of them or
// none. expected is checked against the stream's last version first; on a
// mismatch nothing is written and the error is a [*VersionConflictError].
//
// Events with a zero ID get a UUIDv7. An Append whose events all carry IDs
// that are already stored, in the same order, as consecutive events of the
// stream's current life is a retry of an earlier Append: it writes nothing
// and returns the result of that earlier Append, whatever expected says. An
// event ID stored anywhere else fails with [ErrDuplicateEvent]. The payloads
// of a retry are not compared: the ID is the idempotency key.
//
// An empty events list, an invalid stream ID, an event without a type, two
// events with the same ID or an invalid expected version fail with
// [ErrInvalidArgument].
func (s *Store) Append(ctx context.Context, stream string, expected ExpectedVersion, events ...Event) (AppendResult, error) {
	return s.AppendWith(ctx, stream, expected, AppendOptions{}, events...)
}

// AppendOptions are the less common settings of an append, for
// [Store.AppendWith].
type AppendOptions struct {
	// IdempotencyKey, when set, names the append within its stream: a
	// later append to the stream with the same key writes nothing and
	// returns this append's result, whatever its expected version and
	// events. Use it when the caller has a natural key (a command or
	// request ID) rather than event IDs. Keys are kept for the stream's
	// life: deleting the stream forgets them. At most 512 bytes of UTF-8
	// without control characters.
	IdempotencyKey string
}

// AppendWith is [Store.Append] with options.
func (s *Store) AppendWith(ctx context.Context, stream string, expected ExpectedVersion, opts AppendOptions, events ...Event) (AppendResult, error) {
	if err := s.checkOpen(); err != nil {
		return AppendResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return AppendResult{}, err
	}
	if err := ValidateStreamID(stream); err != nil {
		return AppendResult{}, fmt.Errorf("append: %w", err)
	}
	if err := checkAppend(expected, opts, events); err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	prepared, err := s.prepare(events)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	end := s.begin(ctx, "append", stream)
	res, err := s.backend.Append(ctx, AppendRequest{
		Stream:   stream,
		Expected: expected,
		Events:   prepared,
		Time:     s.now(),

		IdempotencyKey: opts.IdempotencyKey,
	})
	end(Outcome{Events: len(prepared), Position: res.Position, Err: err})
	if err != nil {
		s.counters.appendErrors.Add(1)
		if errors.Is(err, ErrWrongExpectedVersion) {
			s.counters.conflicts.Add(1)
		}
		return AppendResult{}, fmt.Errorf("append %s: %w", stream, err)
	}
	s.counters.appends.Add(1)
	s.counters.eventsAppended.Add(uint64(len(prepared)))
	s.committed(ctx, res.Position)
	return res, nil
}

// checkAppend checks the arguments of an append besides its stream ID and
// its events' content.
func checkAppend(expected ExpectedVersion, opts AppendOptions, events []Event) error {
	if !expected.valid() {
		return invalidf("expected version %s", expected)
	}
	if len(events) == 0 {
		return invalidf("no events")
	}
	if opts.IdempotencyKey != "" {
		if err := validateName("idempotency key", opts.IdempotencyKey, MaxStreamIDLen); err != nil {
			return err
		}
	}
	return nil
}

// prepare checks events and returns a copy of them in which every event has
// an ID, distinct from the others'.
func (s *Store) prepare(events []Event) ([]Event, error) {
	prepared := make([]Event, len(events))
	var seen map[uuid.UUID]struct{}
	if len(events) > 1 {
		seen = make(map[uuid.UUID]struct{}, len(events))
	}
	for i, e := range events {
		if err := validateType(e.Type); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if size := len(e.Data) + len(e.Metadata); s.opts.MaxEventSize > 0 && size > s.opts.MaxEventSize {
			return nil, fmt.Errorf("event %d: %w: %d bytes, the limit is %d", i, ErrEventTooLarge, size, s.opts.MaxEventSize)
		}
		if e.ID == uuid.Nil {
			if e.ID = s.newID(); e.ID == uuid.Nil {
				return nil, invalidf("Options.NewEventID returned the zero UUID")
			}
		}
		if seen != nil {
			if _, dup := seen[e.ID]; dup {
				return nil, invalidf("event ID %s given twice", e.ID)
			}
			seen[e.ID] = struct{}{}
		}
		prepared[i] = e
	}
	return prepared, nil
}

// ReadStream yields the events of a stream in version order (or reverse
// order with Backward), starting at opts.From. A stream that does not exist
// or was deleted yields [ErrStreamNotFound] as its only element; a From past
// the end yields nothing. Every error it yields names the stream.
//
// The sequence reads in pages, so memory stays constant however long the
// stream is, and no database connection or lock is held while the loop body
// runs: the body may append to the store. Once a read has begun it follows
// the stream's life it started on, even if the stream is deleted and started
// again meanwhile. The sequence stops at the first error and yields it; a
// cancelled ctx ends it with ctx.Err(). It can be ranged more than once, each
// time reading afresh.
//
// A stream with a [Retention] policy reads from its first retained version
// on, forward and backward: From and Limit apply to what is retained, and
// a stream whose events have all expired reads as empty (it still exists).
func (s *Store) ReadStream(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[RecordedEvent, error] {
	err := s.checkOpen()
	if err == nil {
		err = ValidateStreamID(stream)
	}
	if err == nil {
		err = opts.validate()
	}
	if err != nil {
		return errSeq[RecordedEvent](fmt.Errorf("read stream %s: %w", stream, err))
	}
	if s.truncates() {
		return s.readRetained(ctx, stream, opts)
	}
	return s.readStream(ctx, stream, opts)
}

// readStream is ReadStream once its arguments are checked.
func (s *Store) readStream(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[RecordedEvent, error] {
	read := s.guard(ctx, "read_stream", stream, s.backend.ReadStream(ctx, stream, opts))
	return func(yield func(RecordedEvent, error) bool) {
		for e, err := range read {
			if err != nil {
				err = fmt.Errorf("read stream %s: %w", stream, err)
			}
			if !yield(e, err) {
				return
			}
		}
	}
}

// ReadAll yields the events of the global log that match filter, in
// position order (or reverse order with Backward), starting at position
// opts.From, inclusive. opts.Limit counts matching events. Events of deleted
// streams are included: the global log never forgets.
//
// A malformed filter yields an error matching [ErrInvalidArgument] as the
// only element. The sequence reads in pages like [Store.ReadStream], holds
// nothing while the loop body runs, stops at the first error, and can be
// ranged more than once.
func (s *Store) ReadAll(ctx context.Context, opts ReadOptions, filter Filter) iter.Seq2[RecordedEvent, error] {
	err := s.checkOpen()
	if err == nil {
		err = opts.validate()
	}
	if err == nil {
		filter, err = filter.withMatcher()
	}
	if err != nil {
		return errSeq[RecordedEvent](fmt.Errorf("read all: %w", err))
	}
	return s.guard(ctx, "read_all", "", s.backend.ReadAll(ctx, opts, filter))
}

// StreamVersion returns the last version of a stream, or -1 when it does not
// exist.
func (s *Store) StreamVersion(ctx context.Context, stream string) (int64, error) {
	if err := s.checkOpen(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := ValidateStreamID(stream); err != nil {
		return 0, fmt.Errorf("stream version: %w", err)
	}
	v, err := s.backend.StreamVersion(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream version %s: %w", stream, err)
	}
	return v, nil
}

// StreamExists reports whether a stream exists: it has events and was not
// deleted since.
func (s *Store) StreamExists(ctx context.Context, stream string) (bool, error) {
	v, err := s.StreamVersion(ctx, stream)
	return v >= 0, err
}

// ListStreams yields the live streams in ascending order of ID, filtered and
// paged by opts. Like the read sequences it reads in pages, holds nothing
// while the loop body runs, and stops at the first error.
func (s *Store) ListStreams(ctx context.Context, opts ListOptions) iter.Seq2[StreamInfo, error] {
	err := s.checkOpen()
	if err == nil {
		err = opts.validate()
	}
	if err != nil {
		return errSeq[StreamInfo](fmt.Errorf("list streams: %w", err))
	}
	return s.guardList(ctx, s.backend.ListStreams(ctx, opts))
}

// DeleteStream deletes a stream after checking expected against its last
// version, as Append does. Afterwards the stream reads as
// [ErrStreamNotFound], its version is -1, it is not listed, and an Append
// with [NoStream] or [Any] starts it again at version 0. Its events stay in
// the global log, so ReadAll and the consumers that saw them stay
// consistent.
//
// A mismatch is a [*VersionConflictError]; a stream that does not exist
// (after an expected version that allows that, such as [Any] or [NoStream])
// is [ErrStreamNotFound].
func (s *Store) DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateStreamID(stream); err != nil {
		return fmt.Errorf("delete stream: %w", err)
	}
	if !expected.valid() {
		return fmt.Errorf("delete stream %s: %w", stream, invalidf("expected version %s", expected))
	}
	end := s.begin(ctx, "delete_stream", stream)
	err := s.backend.DeleteStream(ctx, stream, expected)
	end(Outcome{Err: err})
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", stream, err)
	}
	return nil
}
