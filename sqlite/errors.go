package sqlite

import "errors"

// Sentinel errors of the SQLite backend, besides those of package
// eventstore. Each matches with [errors.Is], however it was wrapped.
var (
	// ErrReadOnly reports a write to a store opened with [Options.ReadOnly].
	ErrReadOnly = errors.New("eventstore/sqlite: store opened read-only")

	// ErrSchemaTooNew reports a store file whose schema version is newer than
	// this package knows: it was written by a newer release, and opening it
	// could damage it.
	ErrSchemaTooNew = errors.New("eventstore/sqlite: schema version newer than this release supports")

	// ErrBusy reports that the file stayed locked by another connection or
	// process for longer than [Options.BusyTimeout]; the message says what
	// waited and for how long. Retrying later may succeed.
	ErrBusy = errors.New("eventstore/sqlite: database is locked by another connection or process")

	// ErrWriterTimeout reports a write (an Append, a Transact, any call that
	// writes) whose context has no deadline and that waited
	// [Options.BusyTimeout] for the store's writer connection, held all that
	// time by another transaction of the same store. Almost always that
	// transaction is the caller's own: a write inside an
	// [eventstore.Store.Transact] function (or an exactly-once TxHandler) made
	// with a context other than the function's cannot join the transaction,
	// so it waits for the transaction to end, which waits for it. Nothing of
	// the write is done. A write whose context has a deadline waits until then
	// and returns the context's error instead.
	ErrWriterTimeout = errors.New("eventstore/sqlite: timed out waiting for the writer")

	// ErrChecksum reports an event whose stored checksum does not match
	// its contents, read with [Options.VerifyChecksums]: the file was
	// damaged (a failing SD card) or edited behind the store's back.
	ErrChecksum = errors.New("eventstore/sqlite: event checksum mismatch")
)

// errSpoiled rolls back a group in which an append failed half-written.
var errSpoiled = errors.New("eventstore/sqlite: group spoiled by a failed append")
