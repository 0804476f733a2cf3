package eventstore

import (
	"context"
	"iter"
	"time"

	"github.com/google/uuid"
)

// This file is the whole backend contract: what every backend must do
// ([Backend], made of one small interface per purpose), and the small
// named set of what a backend may do besides ([Transactor],
// [ChangeWatcher], [IntegrityChecker], [CommitReporter], [Retainer],
// [SpaceReclaimer], [Reporter]), which [New] detects once. The conformance
// suite in package eventstoretest has a section for each, and runs every
// optional section a backend implements.

// Backend is the storage contract that every backend implements: the
// SQLite backend (package sqlite) and the in-memory reference backend
// (package memory). Users do not call a Backend directly: they pass it to
// [New] and use the [Store], which validates every argument before it
// reaches the backend. The conformance suite in package eventstoretest
// checks a Backend against this contract through a Store.
//
// Every method is safe for concurrent use. Errors match the sentinels of
// this package where one applies; a backend translates its driver's errors
// in one place. Calls after Close fail with [ErrClosed].
type Backend interface {
	EventLog
	Snapshotter
	Checkpointer
	Claimer
	Parker
	Purger
	Auditor

	// Close releases the backend's resources. Calls after Close fail with
	// [ErrClosed].
	Close() error
}

// EventLog is the part of a [Backend] that keeps streams and the global
// log.
type EventLog interface {
	// Append writes req.Events to the end of req.Stream in one atomic step,
	// after checking req.Expected with [ExpectedVersion.Check] against the
	// stream's last version (-1 for a stream that does not exist or was
	// deleted). Every event has a non-zero, distinct ID and a valid Type.
	// A purged stream's tombstone ([Purger]) fails it with
	// [ErrStreamPurged].
	//
	// Versions continue from the stream's last version (0 for a new or
	// deleted stream). Positions continue the global log: every event gets a
	// position greater than that of any event committed before it, and an
	// event becomes visible to readers only with all the other events of its
	// Append, in position order. Positions strictly increase; they need not
	// be consecutive.
	//
	// When every ID of req.Events is already stored, in the same order, as
	// consecutive events of the stream's current life, Append writes nothing
	// and returns the result those events had (last version and position),
	// without checking req.Expected. Otherwise any stored ID fails the whole
	// Append with [ErrDuplicateEvent]. A version conflict returns a
	// [*VersionConflictError].
	//
	// Concurrent Appends are serialised: each one sees every Append that
	// committed before it. An Append waiting for another (or for a
	// [Transactor]'s transaction) gives up with ctx's error when ctx ends.
	Append(ctx context.Context, req AppendRequest) (AppendResult, error)

	// ReadStream yields the events of the current life of a stream, in
	// version order or, with opts.Backward, in reverse version order,
	// starting at version opts.From (the end, for a backward read with From
	// 0) and stopping after opts.Limit events when it is positive. A stream
	// that does not exist yields [ErrStreamNotFound] as its only element.
	// The sequence must not hold a lock or a database connection while the
	// consumer's loop body runs, must stop at the first error and yield it,
	// and must end with ctx.Err() once ctx is done. It yields at least the
	// events committed before it began; whether it also yields those
	// committed while it runs is up to the backend, but what it yields has
	// no gap.
	ReadStream(ctx context.Context, stream string, opts ReadOptions) iter.Seq2[RecordedEvent, error]

	// ReadAll yields the events of the global log that match filter, in
	// position order or, with opts.Backward, in reverse, starting at
	// position opts.From (the end, for a backward read with From 0) and
	// stopping after opts.Limit matching events when it is positive. Events
	// of deleted streams are included. The filter has been checked with
	// [Filter.Matcher], which the backend may use for whatever it does not
	// evaluate itself. The rules of ReadStream on locks and errors apply.
	ReadAll(ctx context.Context, opts ReadOptions, filter Filter) iter.Seq2[RecordedEvent, error]

	// StreamVersion returns the last version of a stream, or -1 when it does
	// not exist or was deleted.
	StreamVersion(ctx context.Context, stream string) (int64, error)

	// ListStreams yields the streams that exist, in ascending byte order of
	// ID, restricted by opts (prefix, category, strictly after opts.After,
	// at most opts.Limit when positive). The rules of ReadStream on locks and
	// errors apply.
	ListStreams(ctx context.Context, opts ListOptions) iter.Seq2[StreamInfo, error]

	// DeleteStream checks expected against the stream's last version as
	// Append does, then deletes the stream and its snapshots in one atomic
	// step: it reads and lists as absent and a later Append starts it again
	// at version 0, while its events stay in the global log. A stream that
	// does not exist, once the check passed, is [ErrStreamNotFound].
	DeleteStream(ctx context.Context, stream string, expected ExpectedVersion) error
}

// AppendRequest is one Append as the [Store] hands it to a [Backend].
type AppendRequest struct {
	Stream   string          // a valid stream ID
	Expected ExpectedVersion // a valid expected version
	Events   []Event         // at least one; IDs set and distinct, types valid
	Time     time.Time       // the RecordedAt of every event, in UTC

	// IdempotencyKey, when not empty, is checked first: if an earlier
	// append to the stream's current life carried the same key, Append
	// writes nothing and returns that append's result, without checking
	// Expected or the events. Otherwise the key is stored with the append.
	IdempotencyKey string
}

// Snapshotter is the part of a [Backend] that stores snapshots.
//
// A snapshot belongs to one life of its stream: the one that was current
// when it was saved. DeleteStream deletes the stream's snapshots, and
// LoadSnapshot and ListSnapshots never return a snapshot of an earlier
// life, so a stream started again never starts from a deleted state.
type Snapshotter interface {
	// SaveSnapshot stores s in the current life of its stream, replacing a
	// snapshot of the same stream and version. It checks that the stream
	// exists and has reached s.Version atomically with the write, so that
	// a concurrent DeleteStream either comes first (and the save fails) or
	// deletes the snapshot with the stream. A stream that does not exist,
	// or was deleted or purged, is [ErrStreamNotFound]; a version past the
	// stream's last is [ErrInvalidArgument]; nothing is written then. When
	// s.Position is positive, the event at s.Version must be at that
	// position: a snapshot taken of an earlier life, before the stream was
	// deleted and started again, is [ErrStreamNotFound] too. The snapshot
	// is stored with the position of the event at its version. When keep
	// is positive it then deletes all but the keep highest versions of the
	// stream's snapshots.
	SaveSnapshot(ctx context.Context, s Snapshot, keep int) error
	// LoadSnapshot returns the snapshot of the stream at version, or the
	// highest version when version is -1; [ErrSnapshotNotFound] when there
	// is none.
	LoadSnapshot(ctx context.Context, stream string, version int64) (Snapshot, error)
	// ListSnapshots returns the stream's snapshots in ascending version.
	ListSnapshots(ctx context.Context, stream string) ([]Snapshot, error)
	// DeleteSnapshots deletes the stream's snapshot at version, or all of
	// them when version is -1. It reports how many it deleted.
	DeleteSnapshots(ctx context.Context, stream string, version int64) (int, error)
}

// Checkpointer is the part of a [Backend] that keeps the progress of
// durable consumers and forwarders: their checkpoints, and the marks of
// events processed past a checkpoint.
//
// A consumer key names one checkpoint: a consumer's name, or for a member
// of a consumer group, its name with the member, as [ConsumerKey] makes
// it; a [Forwarder]'s key is "outbox/" and its name.
type Checkpointer interface {
	// LoadCheckpoint returns the last position the consumer has processed,
	// and false when it has no checkpoint yet.
	LoadCheckpoint(ctx context.Context, key string) (int64, bool, error)
	// SaveCheckpoint records, at time at, that the consumer has processed
	// everything up to position, and forgets its processed marks at or
	// below it. It never lowers a checkpoint: when the stored one is
	// higher, it stays (only ResetCheckpoint moves back).
	SaveCheckpoint(ctx context.Context, key string, position int64, at time.Time) error
	// ResetCheckpoint sets the checkpoint to position at time at, forward or
	// back, and forgets every processed mark of the consumer.
	ResetCheckpoint(ctx context.Context, key string, position int64, at time.Time) error
	// Checkpoints lists every checkpoint, in key order.
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// MarkProcessed records that the consumer has handled the event.
	MarkProcessed(ctx context.Context, key string, id uuid.UUID, position int64) error
	// Processed reports whether the consumer has a mark for the event.
	Processed(ctx context.Context, key string, id uuid.UUID) (bool, error)
}

// Claimer is the part of a [Backend] that keeps two instances of one
// consumer or forwarder from running at once, in one process or in
// several on the same store. A consumer key (see [Checkpointer]) has a
// claim: the running instance that holds it, until an expiry the holder
// keeps moving forward.
type Claimer interface {
	// Claim takes the claim of key for owner until expires, or renews it
	// when owner holds it already. When another owner holds it and it has
	// not expired at now (now is before its expiry), it fails with an error
	// matching [ErrConsumerRunning] and changes nothing; a backend that can
	// tell that the holder has died (its process is gone) may take the
	// claim over before it expires. Claim and the check are one atomic step,
	// across every process that shares the store.
	Claim(ctx context.Context, key, owner string, now, expires time.Time) error
	// Release drops owner's claim of key. It does nothing when owner does
	// not hold it.
	Release(ctx context.Context, key, owner string) error
}

// Parker is the part of a [Backend] that keeps the events a consumer gave
// up on ([ConsumerOptions.ParkAfter]).
type Parker interface {
	// Park records an event the consumer of key gave up on, replacing an
	// earlier record of the same event.
	Park(ctx context.Context, key string, p ParkedEvent) error
	// Parked lists the consumer's parked events in position order.
	Parked(ctx context.Context, key string) ([]ParkedEvent, error)
	// Unpark forgets the consumer's parked event at position, and reports
	// whether there was one.
	Unpark(ctx context.Context, key string, position int64) (bool, error)
}

// Purger is the part of a [Backend] that deletes for good, for GDPR
// erasure and retention. A purged stream keeps a tombstone, and
// [EventLog.Append] refuses it with [ErrStreamPurged] until the tombstone
// is removed.
type Purger interface {
	// PurgeStream physically removes every event the stream ever had (all
	// its lives), its snapshots, idempotency keys and parked events, and
	// leaves a tombstone. It returns how many events it removed;
	// [ErrStreamNotFound] when the stream never had any.
	PurgeStream(ctx context.Context, stream string) (int64, error)
	// RemoveTombstone lets a purged stream be started again;
	// [ErrStreamNotFound] when it has no tombstone.
	RemoveTombstone(ctx context.Context, stream string) error
}

// Auditor is the part of a [Backend] that [Store.Verify] uses: checks of
// the records a backend keeps beside its events, which the other methods
// do not show. Each method calls problem once per finding, with a line
// that names the stream.
type Auditor interface {
	// AuditStreams checks every event against the record of its stream:
	// that the record exists, and that the event's life and category agree
	// with it. An event of a life the stream has not reached, or of the
	// current life of a deleted stream, disagrees. A backend that stores a
	// checksum with each event checks it here too.
	AuditStreams(ctx context.Context, problem func(string)) error
	// AuditSnapshots checks every stored snapshot, whatever its stream:
	// that the stream exists, that the snapshot belongs to its current life
	// and that the stream has reached its version. It returns how many
	// snapshots it checked. A backend without snapshots returns 0.
	AuditSnapshots(ctx context.Context, problem func(string)) (int, error)
	// LastPosition returns the highest position the log has ever given,
	// purged events included; 0 for an empty log.
	LastPosition(ctx context.Context) (int64, error)
}

// Transactor is an optional capability of a [Backend]: running the
// application's own writes, event appends and a consumer's checkpoint in
// one transaction. Both bundled backends implement it. [Store.Transact]
// and [ConsumerOptions.TxHandler] need it; without it they fail with
// [errors.ErrUnsupported].
//
// A transaction holds the backend's writer from its beginning to its end:
// every write made with another context waits for it, honouring its own
// context. Reads inside the transaction see the store as it was before
// the transaction began, not its own uncommitted appends.
type Transactor interface {
	// Transact begins a write transaction, calls fn with a context that
	// carries it, and commits when fn returns nil or rolls back when it
	// fails or panics. The backend's writes made with that context (such as
	// Appends) join the transaction; a Transact with that context is
	// nested, a savepoint: when its fn fails, its writes are undone and the
	// outer transaction goes on.
	Transact(ctx context.Context, fn func(ctx context.Context) error) error
	// WithCheckpoint runs an exactly-once handler: it begins a write
	// transaction, calls fn with a context that carries it, saves the
	// checkpoint of key at position (at time at, as
	// [Checkpointer.SaveCheckpoint] does) in the same transaction, and
	// commits; when fn fails it rolls back and returns fn's error.
	WithCheckpoint(ctx context.Context, key string, position int64, at time.Time, fn func(ctx context.Context) error) error
}

// ChangeWatcher is an optional capability of a [Backend]. A backend whose
// store other processes (or other Backends on the same storage) can write
// to implements it, so that subscriptions deliver their events too; the
// [Store] runs it while it has subscriptions. Without it, a subscription
// sees only the appends made through its own Store. Appends through the
// Store itself wake subscriptions directly and need no watcher.
type ChangeWatcher interface {
	// WatchChanges calls changed, from one goroutine, whenever events may
	// have been committed by another connection or process, until ctx is
	// done; then it returns ctx's error. It calls changed once as soon as
	// it watches, since it cannot tell what was committed before that.
	// Spurious calls are harmless.
	WatchChanges(ctx context.Context, changed func()) error
}

// CommitReporter is an optional capability of a [Backend]: it hands the
// events of each commit to the [Store], which gives them to caught-up
// subscriptions directly instead of waking them to read storage. Both
// bundled backends implement it. Without it, every commit wakes the
// subscriptions, which read the new events from storage.
//
// A subscription takes a reported commit only when it has passed over
// every position below the commit's first event (see [Commit]); any other
// subscription, and every commit the backend does not report (those of a
// [Transactor]'s transactions, those of other processes), is read from
// storage as before, so a report is never needed for correctness, only a
// report that is wrong can break it.
type CommitReporter interface {
	// ReportCommits sets the function the backend calls after each commit
	// of [EventLog.Append] calls made outside a [Transactor]'s transaction,
	// or, with nil, stops the calls. The backend calls it once per commit
	// (a commit may hold several Appends, as a group commit does), after
	// the commit is durable and visible to readers, one call at a time, in
	// commit order, and before the Appends it holds return. report must not
	// block or call the backend. An Append that writes nothing (a retry, a
	// failure) is not reported.
	ReportCommits(report func(Commit))
}

// Commit is what one commit wrote, as a [CommitReporter] reports it.
type Commit struct {
	// Events are every event the commit wrote, in position order, as
	// ReadAll would yield them. Their Data and Metadata belong to the
	// backend, not to the caller of Append, and must not be modified.
	//
	// Every event committed before them has a lower position than the
	// first, and every event committed after them a higher position than
	// the last (the positions rule of [EventLog.Append]), so the events of
	// the log between Events[0].Position-1 and the last position, exclusive
	// and inclusive, are exactly these: a reader that has passed over every
	// position up to one at or above Events[0].Position-1 can take the rest
	// of them from here instead of from storage.
	//
	// A backend that cannot tell what a commit wrote reports it with no
	// Events: every subscription then reads storage.
	Events []RecordedEvent
}

// IntegrityChecker is an optional capability of a [Backend]: a check of
// the storage itself, such as SQLite's PRAGMA integrity_check. Without it,
// [Store.Verify] skips [VerifyIntegrity] and says so.
type IntegrityChecker interface {
	// CheckIntegrity returns "ok", or a description of what is wrong.
	CheckIntegrity(ctx context.Context) (string, error)
}

// Retainer is an optional capability of a [Backend]: retention policies
// and pruning (see [Retention]). Both bundled backends implement it.
// Without it, [Store.SetRetention], [Store.Retention], [Store.Prune] and
// the other retention methods fail with [errors.ErrUnsupported], and
// ReadStream truncates nothing.
//
// The [Store] does the rest: it validates policies, caches them, computes
// [PruneOptions.After]'s bound from the checkpoints, and turns a prune into
// one PruneStream call per batch.
type Retainer interface {
	// SetRetention stores p, replacing the policy of the same stream or
	// category; the zero p.Retention removes it. p is valid: exactly one
	// of Stream and Category set, no negative value.
	SetRetention(ctx context.Context, p RetentionPolicy) error
	// Retentions returns every stored policy: the streams', in order of
	// stream ID, then the categories', in order of category.
	Retentions(ctx context.Context) ([]RetentionPolicy, error)
	// RetainedFrom returns the first version of the stream's current life
	// that r (not zero) retains at time now, as [Retention] defines it:
	// the lowest version v at or above both r.TruncateBefore and (when
	// r.MaxCount > 0) last-r.MaxCount+1 whose event was recorded at or
	// after now-r.MaxAge (when r.MaxAge > 0), last+1 when none is. Events
	// already removed count as expired. A stream that does not exist or
	// was deleted is [ErrStreamNotFound].
	RetainedFrom(ctx context.Context, stream string, r Retention, now time.Time) (int64, error)
	// StoredStreams returns, in ascending order, up to limit IDs after
	// after of the streams of category ("" for every category) that have
	// ever had events, deleted ones included.
	StoredStreams(ctx context.Context, category, after string, limit int) ([]string, error)
	// PruneStream removes, in one write transaction, up to req.Limit of
	// the stream's events that req.Retention expires at req.Now (as
	// RetainedFrom computes it inside the transaction), lowest positions
	// first, and with them every event of the stream's earlier lives;
	// only events at or below req.MaxPosition are removed. It removes the
	// stream's snapshots below the last version it has removed. Versions,
	// positions and the stream's record stay: see [Store.Prune].
	PruneStream(ctx context.Context, req PruneRequest) (PruneBatch, error)
	// Pruned reports whether PruneStream has ever removed events of the
	// stream, so that [Store.Verify] takes a stream whose versions begin
	// past 0 for a pruned one, not a damaged one.
	Pruned(ctx context.Context, stream string) (bool, error)
}

// PruneRequest is one batch of [Retainer.PruneStream].
type PruneRequest struct {
	Stream      string    // a valid stream ID
	Retention   Retention // not zero
	Now         time.Time // the Store's clock
	MaxPosition int64     // remove nothing above this position
	Limit       int       // the most events to remove, at least 1
}

// PruneBatch is what one [Retainer.PruneStream] did.
type PruneBatch struct {
	Events    int64 // events removed
	Snapshots int64 // snapshots removed
	// First and Last are the lowest and highest positions removed; 0
	// when none was.
	First, Last int64
	// More reports that expired events at or below MaxPosition may remain:
	// the batch stopped at its limit.
	More bool
	// KeptBack, when More is false, counts the expired events left because
	// they are above MaxPosition.
	KeptBack int64
}

// SpaceReclaimer is an optional capability of a [Backend] whose storage
// keeps the room of removed events (purged or pruned) until it is given
// back, as a SQLite file does. [Store.ReclaimSpace] calls it; without it,
// there is nothing to give back and ReclaimSpace returns 0.
type SpaceReclaimer interface {
	// ReclaimSpace gives the room of removed events back to the file
	// system, in steps short enough that a writer waits at most one step,
	// until none is left or ctx ends. It returns how many bytes the
	// storage shrank by.
	ReclaimSpace(ctx context.Context) (int64, error)
}

// Reporter is an optional capability of a [Backend] that has happenings
// of its own, such as its storage running low ("storage.low",
// "storage.full", "storage.ok", category [CategoryStorage]). [New] calls
// ReportTo once, with a function that hands each happening to
// [Hooks.Event]; the backend calls it from any goroutine, never while it
// holds a lock a write would wait for.
type Reporter interface {
	ReportTo(report func(ctx context.Context, h Happening))
}

// capabilities are the optional capabilities of a backend, found once by
// [New]; a nil field is a capability the backend lacks.
type capabilities struct {
	tx        Transactor
	watcher   ChangeWatcher
	integrity IntegrityChecker
	commits   CommitReporter
	retainer  Retainer
	reclaimer SpaceReclaimer
	reporter  Reporter
}

func capabilitiesOf(b Backend) capabilities {
	var c capabilities
	c.tx, _ = b.(Transactor)
	c.watcher, _ = b.(ChangeWatcher)
	c.integrity, _ = b.(IntegrityChecker)
	c.commits, _ = b.(CommitReporter)
	c.retainer, _ = b.(Retainer)
	c.reclaimer, _ = b.(SpaceReclaimer)
	c.reporter, _ = b.(Reporter)
	return c
}
