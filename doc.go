// Package eventstore is an embedded event store for Go: streams of events
// with optimistic concurrency and a global ordered log, linked into your
// program, with no server to run. It is pure Go, so the same code runs on a
// laptop, in a service and on a Raspberry Pi.
//
// A [Store] sits on a [Backend]: package sqlite stores events durably in a
// SQLite file, and package memory keeps them in memory for tests. Both pass
// the same conformance suite, package eventstoretest.
//
//	backend, err := sqlite.Open("events.db", nil)
//	if err != nil { ... }
//	store := eventstore.New(backend, nil)
//	defer store.Close()
//
// # Streams and events
//
// An event belongs to a stream, named by a stream ID such as "account-42":
// non-empty UTF-8, at most [MaxStreamIDLen] bytes, no control characters.
// The part before the first '-' is the stream's [Category] ("account"),
// and the part after it up to a '+' its [CardinalID] ("42"), as in Message
// DB. Each event has a 0-based version in its stream and a global position
// in the log of all streams: positions start at 1, increase strictly in
// commit order, and are never reused.
//
// # Appending
//
// [Store.Append] writes events to a stream atomically, after an
// optimistic concurrency check given as an [ExpectedVersion]: [Any],
// [NoStream], [StreamExists] or [Exact]. A failed check writes nothing and
// returns a [*VersionConflictError], which matches
// [ErrWrongExpectedVersion]:
//
//	v, _ := store.StreamVersion(ctx, "account-42")   // -1 if new
//	_, err := store.Append(ctx, "account-42", eventstore.Exact(v), event)
//	if errors.Is(err, eventstore.ErrWrongExpectedVersion) {
//		// someone else wrote first: reload and decide again
//	}
//
// Appends are idempotent by event ID. Give events your own IDs and an
// Append that repeats an earlier one (after a timeout, say) returns the
// earlier result and writes nothing; an ID stored anywhere else is
// [ErrDuplicateEvent]. Events without an ID get a UUIDv7.
//
// # Reading
//
// [Store.ReadStream] reads one stream and [Store.ReadAll] the global log,
// forward or backward, from a version or position, with a limit. ReadAll
// takes a [Filter] on stream IDs, categories, a stream glob, event types,
// top-level JSON payload fields and an arbitrary predicate; a field may
// hold any number of values. Reads are iterators:
//
//	for e, err := range store.ReadStream(ctx, "account-42", eventstore.ReadOptions{}) {
//		if err != nil { ... } // ErrStreamNotFound, ctx.Err(), ...
//		fmt.Println(e.Version, e.Type)
//	}
//
// They fetch in pages, so memory stays flat however long the stream, and
// they hold no lock or connection while your loop body runs: breaking out
// early is safe, and the body may append to the store. A reader that has
// seen position p will never later find a new event below p, so a reader
// that resumes after p misses nothing, however many writers run at once.
//
// # Subscriptions
//
// [Store.Subscribe] delivers events of the global log on a channel: the
// stored ones first, then each new one as it is committed, in position
// order with no gap and no duplicate, filtered like ReadAll:
//
//	sub, err := store.Subscribe(ctx, eventstore.SubscribeOptions{
//		From:   lastSeen + 1, // or 0 for the start, or eventstore.FromNow
//		Filter: eventstore.Filter{Categories: []string{"order"}},
//	})
//	if err != nil { ... }
//	defer sub.Close()
//	for e := range sub.Events() {
//		...
//	}
//	// sub.Err() says why the channel closed
//
// Every commit reaches the subscriptions at once, no polling interval in
// process: a backend that reports its commits ([CommitReporter], both
// bundled backends) hands their events to the subscriptions that are caught
// up, which send them without a read; any other commit wakes them to read
// the new events from storage. A slow receiver never slows down writers, it
// just reads from further back. Events that another
// process writes to the same SQLite file arrive too, within the backend's
// watch interval (50ms by default). Close, the context and Store.Close each
// end a subscription, and every goroutine it started has exited when Close
// returns.
//
// [Subscription.CaughtUp] is closed once the subscription has read the log
// to its end and put every matching event on the channel; it falls behind,
// and CaughtUp gives an open channel again, when its receiver is a whole
// buffer behind (KurrentDB's CaughtUp and FellBehind; the hooks report
// both). [Subscription.Position] is how far it has read the log, past the
// events its filter skips.
//
// # Durable consumers
//
// [Store.Consume] runs a named consumer whose checkpoint (the last position
// it processed) is stored in the backend, so it resumes where it stopped:
//
//	err := store.Consume(ctx, eventstore.ConsumerOptions{
//		Name:    "balances",
//		Filter:  eventstore.Filter{Categories: []string{"account"}},
//		Handler: func(ctx context.Context, e eventstore.RecordedEvent) error { ... },
//	})
//
// Delivery is at least once, in position order. A handler error or panic
// is retried with exponential backoff and jitter; ParkAfter parks a poison
// event and goes on ([Store.Parked] lists them; [Store.RetryParked] has the
// consumer handle one again when it next starts, [Store.DropParked]
// forgets one). CheckpointEvery and
// CheckpointInterval save the checkpoint in batches; Deduplicate records
// each handled event's ID so a redelivery after a crash is skipped.
// [Store.ResetConsumer] rewinds a consumer to rebuild a projection, and
// [Store.Consumers] lists checkpoints with their lag and whether each
// consumer is caught up. A checkpoint moves past the events a consumer's
// filter skips as well as those it handles, so the lag reaches 0 once
// nothing is left to handle.
//
// [Store.WaitFor] gives a projection read-your-writes: after a command,
// wait for the projection's consumer to pass the position it appended, then
// read:
//
//	res, err := store.Append(ctx, "account-1", eventstore.Any, e)
//	...
//	err = store.WaitFor(ctx, "balances", res.Position) // or ctx's error
//
// It waits for every member of a group, and for a consumer that has not
// started yet; it wakes at each checkpoint saved in this process and reads
// the checkpoints every 100ms for consumers in other processes.
//
// A [Group] splits the streams between the members of a consumer group by
// [GroupMember], Message DB's hash of the cardinal ID: each event goes to
// exactly one member, and each member's checkpoint moves past the events of
// the others, so no member stalls.
//
// On SQLite a TxHandler makes a consumer exactly once: it runs inside the
// transaction that saves the checkpoint (sqlite.Tx gives it), so the
// handler's writes to the application's tables and the checkpoint commit
// together or not at all. On SQLite, (*sqlite.Backend).Read reads those
// tables in a read-only transaction that never waits for the writer, and
// sqlite.OpenMemory opens a throwaway store with the same SQL for tests.
//
// One instance of a consumer (a name and group member) runs at a time:
// Consume claims it in the backend, renews the claim while it runs and
// releases it when it stops, and a second Consume of it, in this process or
// in another on the same store, fails at once with [ErrConsumerRunning]. A
// claim left by a process that died lapses after [ConsumerOptions.Lease]
// ([DefaultLease], 15s); on Linux the SQLite backend sees at once that the
// process is gone, so a restart after kill -9 runs straight away. A
// checkpoint never moves back but by [Store.ResetConsumer]. Forwarders are
// claimed the same way, under the key "outbox/" and their name, which
// consumer names may not begin with.
//
// # Aggregates
//
// A [Decider] describes an aggregate with three pure parts: its initial
// state, Decide (state and command to events, or a domain error) and
// Evolve (state and event to state). A [Repository] runs it against the
// store, one stream per aggregate:
//
//	accounts := eventstore.NewRepository(store, decider, codec, &eventstore.RepositoryOptions[Account]{SnapshotEvery: 100})
//	res, err := accounts.Execute(ctx, "account-42", Deposit{Amount: 500})
//
// Execute loads the aggregate (latest snapshot plus the events after it),
// decides, and appends with the loaded version as the expected version; on
// a conflict it reloads and decides again, a bounded number of times. A
// domain error writes nothing and comes back matching both itself and
// [ErrRejected], so a refused command is told from a failure without
// listing the domain's errors:
//
//	if errors.Is(err, eventstore.ErrRejected) { ... } // ErrOverdraft, ... as errors.Is and errors.As find them
//
// A command that decides nothing writes nothing. With SnapshotEvery the
// repository saves a snapshot whenever an Execute takes the stream across
// a multiple of it. A snapshot never breaks an aggregate: one of another
// [RepositoryOptions.SnapshotVersion] (raise it when the state's shape
// changes; snapshots saved without one are version 0), or one that fails
// to decode, is ignored, counted and reported as "snapshot.ignored", and
// the aggregate is replayed from its events. [RepositoryOptions.CacheSize]
// keeps the most recently used aggregates in memory (an LRU): a cached
// load reads only from the cached version on, and a conflict drops the
// entry; states are copied as values, or through EncodeState and
// DecodeState when they hold maps, slices or pointers, so callers never
// share one.
//
// Package decidertest tests a Decider without a store: given these
// events, when this command, then these events or this error, with a diff
// of the events on failure.
// [Fold] is the building block for hand-written projections; package
// tagged holds erl-esdb's tagged fold, of map payloads with summed and
// overwritten fields. [Correlate] and [CausedBy] make the metadata that
// traces which command or event caused which events.
//
// # Typed events
//
// A [Registry] maps event type names to Go types, as a value you pass
// around rather than a package global. [Register] adds a type; [Upcast]
// makes an old stored version decode as the current type; a type with a
// Validate method is checked when it is encoded (so it is never appended
// invalid) and when it is decoded. [RegistryCodec] hands the registry to a
// Repository.
//
// A [Router] calls one handler per Go type, so a projection needs no type
// switch; its Handle method is a consumer's Handler or TxHandler. Events
// it has no handler for are skipped, or an error matching
// [ErrUnhandledEvent] with [RouterOptions.Strict]:
//
//	r := eventstore.NewRouter(registry)
//	eventstore.On(r, func(ctx context.Context, e AccountOpened, meta eventstore.RecordedEvent) error { ... })
//	err := store.Consume(ctx, eventstore.ConsumerOptions{Name: "accounts", Handler: r.Handle})
//
// [DecodeAs] decodes one event as a given type. An event that does not
// decode is an error that names its type, stream, version and position.
//
// # Snapshots
//
// [Store.SaveSnapshot] stores a stream's state as of a version;
// [Store.LoadSnapshot], [Store.LoadSnapshotAt], [Store.ListSnapshots],
// [Store.DeleteSnapshots], [Store.DeleteSnapshotAt] and
// [Store.SnapshotExists] manage them, [Options.SnapshotRetention] keeps the
// last few, and deleting a stream deletes its snapshots. A snapshot belongs
// to the life of its stream it was taken of: one saved while the stream is
// deleted fails or goes with it, and none is ever loaded in the stream's
// next life.
//
// # Outbox
//
// A [Forwarder] ships committed events to a [Sink] (NATS JetStream in
// module github.com/edge-es/eventstore/jetstream, HTTP in package
// httpsink) in position order and in batches, moving a durable checkpoint
// only past what the sink confirmed, with backoff while it is down:
//
//	fwd, err := store.NewForwarder(eventstore.ForwarderOptions{Name: "central", Sink: sink})
//	go fwd.Run(ctx)
//
// [Store.Transact] runs the application's own SQL and event appends in one
// SQLite transaction, and [Store.AppendWith] takes a producer idempotency
// key: a second append with the same key in the stream returns the first
// result and writes nothing.
//
// # Streams as a whole
//
// [Store.StreamVersion] and [Store.StreamExists] tell where a stream is,
// [Store.ListStreams] lists streams by prefix or category in ID order, in
// pages, and [Store.DeleteStream] deletes a stream: it no longer reads or
// lists, and a later Append starts it again at version 0, while its events
// stay in the global log for the consumers that saw them.
//
// # Retention
//
// [Store.SetRetention] and [Store.SetCategoryRetention] store a
// [Retention] policy with KurrentDB's semantics (MaxAge, MaxCount,
// TruncateBefore; a stream's own policy overrides its category's): expired
// events disappear from ReadStream at once, and [Store.Prune] removes them
// from storage in short batches, never past what the forwarders and
// consumers named in [PruneOptions.After] have checkpointed, so a device
// that was offline for a week loses nothing it has not shipped.
// [Store.PruneEvery] does it on an interval and reports each run to the
// hooks and [Stats]:
//
//	store.SetCategoryRetention(ctx, "sensor", eventstore.Retention{MaxAge: 30 * 24 * time.Hour})
//	go store.PruneEvery(ctx, time.Hour, eventstore.PruneOptions{After: []string{"central"}})
//
// Positions are never reused, and a stream pruned empty keeps its version.
//
// # Observability
//
// [Options.Hooks] observes the store: Start brackets appends, reads,
// deletes, purges and snapshots with their duration, event count and error,
// and Event reports happenings by category (store opened or closed;
// subscription created, closed or lagging; consumer checkpoint, failure or
// parked event; snapshot saved; outbox batch sent or failed). [LogHooks]
// logs them with log/slog, the module github.com/edge-es/eventstore/otelhooks
// turns them into OpenTelemetry spans and metrics, and [Store.Stats]
// returns counters.
//
// # Reliability tools
//
// [Store.Verify] checks a store and reports what it checked and found;
// [Store.PurgeStream] erases a stream's events from the log itself (for
// GDPR erasure and retention) and leaves a tombstone that refuses appends
// until [Store.RemoveTombstone]; [Options.MaxEventSize] bounds the size of
// an event; [Store.ReclaimSpace] gives the space of purged events back to
// the file system ([Store.Prune] does it for the events it removes). The SQLite backend adds an online Backup,
// and a storage budget that refuses writes past it with
// [ErrStorageFull].
//
// # Backends
//
// A [Backend] is the whole of what a store needs from its storage, in one
// place (backend.go), grouped by purpose: the streams and the global log
// ([EventLog]), snapshots ([Snapshotter]), consumers' checkpoints
// ([Checkpointer]), their claims ([Claimer]), parked events ([Parker]),
// hard deletion ([Purger]) and the records [Store.Verify] audits
// ([Auditor]). Beside it stands the small set of what a backend may do
// besides, which [New] detects once: transactions and exactly-once
// consumers ([Transactor]; without it [Store.Transact] and
// [ConsumerOptions.TxHandler] fail with [errors.ErrUnsupported]), watching
// for appends made by other processes ([ChangeWatcher]; without it a
// subscription sees only its own Store's appends), and a check of the
// storage itself ([IntegrityChecker]; without it [Store.Verify] skips
// that check and says so), retention ([Retainer]; without it the
// retention methods fail with [errors.ErrUnsupported]), giving the room
// of removed events back ([SpaceReclaimer]; without it
// [Store.ReclaimSpace] returns 0) and reporting happenings of its own,
// such as its storage running low ([Reporter]). Package eventstoretest is
// the conformance
// suite: a section for each part of the contract, and one for each
// optional capability, run for every backend that has it.
//
// # Errors
//
// Bad input (an invalid stream ID, an event without a type, a malformed
// filter) fails with an error that matches [ErrInvalidArgument] and writes
// nothing. Every error that has a sentinel in this package matches it with
// [errors.Is]; calls on a closed store fail with [ErrClosed].
package eventstore
