package eventstore

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the store returns for one of these conditions
// matches the sentinel with [errors.Is], however it was wrapped.
var (
	// ErrWrongExpectedVersion reports that a stream's version did not match the
	// [ExpectedVersion] of an Append or DeleteStream. The error is always a
	// [*VersionConflictError] as well.
	ErrWrongExpectedVersion = errors.New("eventstore: wrong expected version")

	// ErrStreamNotFound reports that a stream does not exist, or was deleted.
	// The [Store]'s errors that match it name the stream, as in
	// "read stream order-1: eventstore: stream not found".
	ErrStreamNotFound = errors.New("eventstore: stream not found")

	// ErrDuplicateEvent reports that an appended event's ID is already stored,
	// other than as an earlier identical append of the same stream (which is a
	// harmless retry, see [Store.Append]).
	ErrDuplicateEvent = errors.New("eventstore: duplicate event ID")

	// ErrInvalidArgument reports bad input: an invalid stream ID, an event
	// without a type, a malformed filter. Nothing was written.
	ErrInvalidArgument = errors.New("eventstore: invalid argument")

	// ErrEventTooLarge reports an event bigger than [Options.MaxEventSize].
	// It matches [ErrInvalidArgument] too.
	ErrEventTooLarge = fmt.Errorf("%w: event too large", ErrInvalidArgument)

	// ErrStreamPurged reports an append to a stream that was purged: its
	// tombstone keeps it from being started again until
	// [Store.RemoveTombstone].
	ErrStreamPurged = errors.New("eventstore: stream purged")

	// ErrUnknownConsumer reports a name in [PruneOptions.After] that has
	// no checkpoint, neither a forwarder's nor a consumer's: nothing was
	// removed. It matches [ErrInvalidArgument] too.
	ErrUnknownConsumer = fmt.Errorf("%w: unknown consumer or forwarder", ErrInvalidArgument)

	// ErrClosed reports a call on a [Store] or backend that has been closed.
	ErrClosed = errors.New("eventstore: store closed")

	// ErrConsumerRunning reports that a consumer (or group member, or
	// forwarder) of that name is already running, in this process or in
	// another one on the same store, so it was not started; or that a
	// running one lost its claim to another. See [ConsumerOptions.Lease].
	ErrConsumerRunning = errors.New("eventstore: consumer already running")

	// ErrRejected matches every domain error that [Repository.Execute]
	// returns: a command the aggregate's Decide refused. The error matches
	// Decide's own error too, so errors.Is and errors.As on the domain's
	// errors keep working.
	ErrRejected = errors.New("eventstore: command rejected")

	// ErrWrongEventType reports an event that decodes to another Go type
	// than the one asked for, as from [DecodeAs].
	ErrWrongEventType = errors.New("eventstore: event of another type")

	// ErrUnhandledEvent reports an event a strict [Router] has no handler
	// for (see [RouterOptions.Strict]).
	ErrUnhandledEvent = errors.New("eventstore: no handler for event type")

	// ErrSnapshotNotFound reports that a stream has no snapshot (at the
	// version asked for).
	ErrSnapshotNotFound = errors.New("eventstore: snapshot not found")

	// ErrHandlerPanic matches the error a consumer reports when its handler
	// panicked; the consumer recovers and treats it like any handler error.
	ErrHandlerPanic = errors.New("eventstore: handler panicked")

	// ErrStorageFull reports a write refused for want of room: the
	// backend's storage budget is used up (the SQLite backend's
	// Options.MaxBytes) or the disk is full. Nothing of the write was
	// done. Writes succeed again once room is freed: events removed
	// ([Store.PurgeStream], a prune), or files removed from the disk.
	// A backend with a budget warns before it is used up (a
	// "storage.low" happening, see [Hooks]).
	ErrStorageFull = errors.New("eventstore: storage full")

	// ErrNotParked reports that a consumer has no parked event at that
	// position, for [Store.RetryParked] and [Store.DropParked].
	ErrNotParked = errors.New("eventstore: event not parked")
)

// Errors of typed events.
var (
	// ErrUnknownEventType reports an event type that a [Registry] has no
	// Go type (or upcaster) for, or a Go value of a type it has no name for.
	ErrUnknownEventType = errors.New("eventstore: unknown event type")
	// ErrInvalidEvent reports an event whose Validate method failed, or
	// whose data does not decode into its Go type. When it comes from
	// encoding, the error matches [ErrInvalidArgument] too.
	ErrInvalidEvent = errors.New("eventstore: invalid event")
)

// errStopped is how catchUp reports that the subscription was stopped.
var errStopped = errors.New("eventstore: subscription stopped")

// VersionConflictError is the error returned when an [ExpectedVersion] check
// fails. It matches [ErrWrongExpectedVersion] with [errors.Is].
type VersionConflictError struct {
	Stream   string          // the stream whose version was checked
	Expected ExpectedVersion // what the caller expected
	Actual   int64           // the stream's last version; -1 when it does not exist
}

// Error implements the error interface.
func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("eventstore: wrong expected version for stream %q: expected %s, actual %d",
		e.Stream, e.Expected, e.Actual)
}

// Is reports whether target is [ErrWrongExpectedVersion].
func (e *VersionConflictError) Is(target error) bool {
	return target == ErrWrongExpectedVersion
}

// invalidf returns an error matching [ErrInvalidArgument] with a message.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))
}
