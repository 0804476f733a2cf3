// Package memory is the in-memory [eventstore.Backend]: the reference
// implementation of the backend contract, for unit tests and ephemeral
// stores. It passes the same conformance suite as the SQLite backend.
// Nothing survives the process.
//
// It runs transactions as the SQLite backend does, so that
// [eventstore.Store.Transact] and exactly-once consumers
// ([eventstore.ConsumerOptions.TxHandler]) work in unit tests without a
// file: the appends (and snapshots, checkpoints…) made with the
// transaction's context commit together, or not at all; a nested Transact
// is a savepoint; reads, inside the transaction or not, see the store as it
// was before it; and the transaction holds the one writer, so every other
// write waits for it until its own context ends. There are no application
// tables to write beside the events.
package memory

import (
	"bytes"
	"context"
	"iter"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// pageSize is how many events or streams a sequence copies under the lock
// before it releases the lock and yields them.
const pageSize = 256

// Backend keeps the store in memory. Create it with [New]; the zero value
// is an empty store too. It is safe for concurrent use.
type Backend struct {
	mu     sync.RWMutex
	closed bool
	data   // what is committed; readers see only this
	writer writeLock
	report atomic.Pointer[func(eventstore.Commit)] // see ReportCommits
}

// data is the content of a store. A transaction works on a copy of it
// ([data.fork]) and replaces the committed data with that copy when it
// commits.
type data struct {
	log     []eventstore.RecordedEvent // the global log; log[i].Position == i+1, or 0 once purged
	ids     map[uuid.UUID]int64        // event ID -> position
	streams map[string]*stream         // live streams only

	consumers map[string]*consumerState // by consumer key
	snapshots map[string]lifeSnapshots  // by stream
	purged    map[string]bool           // tombstones

	// earlier holds, by stream, the positions of the events of the
	// stream's earlier lives, ended by DeleteStream, for pruning.
	earlier    map[string][]int64
	retention  map[string]eventstore.Retention // streams' own policies
	categories map[string]eventstore.Retention // categories' policies
	pruned     map[string]bool                 // streams PruneStream removed events of
	// logShared reports that a fork may share log's array: a write to one
	// of its slots copies it first.
	logShared bool
}

// stream is the current life of a stream.
type stream struct {
	life      *lifeID
	positions []int64 // positions[v] is the global position of version v
	createdAt time.Time
	updatedAt time.Time
	keys      map[string]eventstore.AppendResult // by idempotency key
	pruned    int64                              // versions below this were pruned
}

// lifeID names one life of a stream: DeleteStream ends it and a later
// Append begins another. It has a size, so that two are never one.
type lifeID struct{ _ byte }

var _ eventstore.Backend = (*Backend)(nil)

// New returns an empty in-memory backend, as new(Backend) does.
func New() *Backend { return new(Backend) }

// Close drops the data. Calls after Close fail with [eventstore.ErrClosed].
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return eventstore.ErrClosed
	}
	b.closed = true
	b.data = data{}
	return nil
}

// Append implements [eventstore.Backend].
func (b *Backend) Append(ctx context.Context, req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	var res eventstore.AppendResult
	inTx := b.txOf(ctx) != nil
	err := b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := len(d.log)
		var err error
		res, err = d.append(req)
		if report := b.report.Load(); report != nil && !inTx && len(d.log) > n {
			// Still holding the writer: reports come in commit order.
			(*report)(eventstore.Commit{Events: d.log[n:len(d.log):len(d.log)]})
		}
		return err
	})
	return res, err
}

var _ eventstore.CommitReporter = (*Backend)(nil)

// ReportCommits implements [eventstore.CommitReporter]: each Append made
// outside a transaction is a commit of its own. The events reported are
// the log's own, shared with readers.
func (b *Backend) ReportCommits(report func(eventstore.Commit)) {
	if report == nil {
		b.report.Store(nil)
		return
	}
	b.report.Store(&report)
}

func (d *data) append(req eventstore.AppendRequest) (eventstore.AppendResult, error) {
	if d.purged[req.Stream] {
		return eventstore.AppendResult{}, eventstore.ErrStreamPurged
	}
	if d.streams == nil { // the zero Backend
		d.ids, d.streams = make(map[uuid.UUID]int64), make(map[string]*stream)
	}
	s := d.streams[req.Stream]
	if s != nil && req.IdempotencyKey != "" {
		if res, ok := s.keys[req.IdempotencyKey]; ok {
			return res, nil
		}
	}
	if res, retry, err := d.retried(s, req.Events); retry || err != nil {
		return res, err
	}
	actual := int64(-1)
	if s != nil {
		actual = int64(len(s.positions)) - 1
	}
	if err := req.Expected.Check(req.Stream, actual); err != nil {
		return eventstore.AppendResult{}, err
	}
	if s == nil {
		s = &stream{life: new(lifeID), createdAt: req.Time}
		d.streams[req.Stream] = s
	}
	s.updatedAt = req.Time
	for _, e := range req.Events {
		rec := eventstore.RecordedEvent{
			ID:         e.ID,
			StreamID:   req.Stream,
			Version:    int64(len(s.positions)),
			Position:   int64(len(d.log)) + 1,
			Type:       e.Type,
			Data:       clone(e.Data),
			Metadata:   clone(e.Metadata),
			RecordedAt: req.Time,
		}
		d.log = append(d.log, rec)
		d.ids[e.ID] = rec.Position
		s.positions = append(s.positions, rec.Position)
	}
	last := d.log[len(d.log)-1]
	res := eventstore.AppendResult{Version: last.Version, Position: last.Position}
	if req.IdempotencyKey != "" {
		if s.keys == nil {
			s.keys = make(map[string]eventstore.AppendResult)
		}
		s.keys[req.IdempotencyKey] = res
	}
	return res, nil
}

// retried reports whether events are a retry of an earlier append to s (all
// stored, in order, at consecutive versions of its current life), and what
// that append returned. Any other stored ID is ErrDuplicateEvent.
func (d *data) retried(s *stream, events []eventstore.Event) (eventstore.AppendResult, bool, error) {
	var found []int64
	for _, e := range events {
		if p, ok := d.ids[e.ID]; ok {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return eventstore.AppendResult{}, false, nil
	}
	if len(found) == len(events) && s != nil {
		first := d.log[found[0]-1]
		v := first.Version
		if v+int64(len(found)) <= int64(len(s.positions)) &&
			slices.Equal(s.positions[v:v+int64(len(found))], found) {
			last := d.log[found[len(found)-1]-1]
			return eventstore.AppendResult{Version: last.Version, Position: last.Position}, true, nil
		}
	}
	return eventstore.AppendResult{}, false, eventstore.ErrDuplicateEvent
}

// ReadStream implements [eventstore.Backend].
func (b *Backend) ReadStream(ctx context.Context, streamID string, opts eventstore.ReadOptions) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		// Hold on to the life being read: a delete and re-create meanwhile
		// does not switch the read to the new life.
		b.mu.RLock()
		if b.closed {
			b.mu.RUnlock()
			yield(eventstore.RecordedEvent{}, eventstore.ErrClosed)
			return
		}
		s := b.streams[streamID]
		b.mu.RUnlock()
		if s == nil {
			yield(eventstore.RecordedEvent{}, eventstore.ErrStreamNotFound)
			return
		}
		start := opts.From
		if opts.Backward && start == 0 {
			start = -1
		}
		versions := indexRange(func() int64 { return int64(len(s.positions)) }, start, opts.Backward, opts.Limit)
		b.page(ctx, yield, func(yield func(eventstore.RecordedEvent) bool) {
			for v := range versions {
				e := b.log[s.positions[v]-1]
				if e.Position == 0 {
					continue // purged meanwhile
				}
				if !yield(e) {
					return
				}
			}
		})
	}
}

// indexRange yields the indexes in [0, n()) from start on, up or down, at
// most limit of them when limit > 0; a backward range with start -1 starts
// at the end. It runs under the read lock. A forward range asks n() as it
// goes, so it takes in what is appended meanwhile, as a paged SQL read does;
// a backward one starts from the end as it was when it began.
func indexRange(n func() int64, start int64, backward bool, limit int) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		count := 0
		if backward {
			if end := n() - 1; start < 0 || start > end {
				start = end
			}
			for i := start; i >= 0; i-- {
				if !yield(i) {
					return
				}
				if count++; count == limit {
					return
				}
			}
			return
		}
		for i := start; i < n(); i++ {
			if !yield(i) {
				return
			}
			if count++; count == limit {
				return
			}
		}
	}
}

// ReadAll implements [eventstore.Backend].
func (b *Backend) ReadAll(ctx context.Context, opts eventstore.ReadOptions, filter eventstore.Filter) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		match, err := filter.Matcher()
		if err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		start := opts.From - 1 // positions are 1-based, the log 0-based
		if opts.From == 0 && !opts.Backward {
			start = 0
		}
		// The limit counts matches, so the index range has none.
		n := func() int64 { return int64(len(b.log)) }
		indexes := indexRange(n, start, opts.Backward, 0)
		count := 0
		b.page(ctx, yield, func(yield func(eventstore.RecordedEvent) bool) {
			for i := range indexes {
				e := b.log[i]
				if e.Position == 0 || !match(e) {
					continue // purged, or not wanted
				}
				if !yield(e) {
					return
				}
				if count++; count == opts.Limit {
					return
				}
			}
		})
	}
}

// page runs events under the read lock, copies what it yields in pages of
// pageSize, and passes each page on to yield with the lock released.
func (b *Backend) page(ctx context.Context, yield func(eventstore.RecordedEvent, error) bool, events iter.Seq[eventstore.RecordedEvent]) {
	next, stop := iter.Pull(events)
	defer stop()
	buf := make([]eventstore.RecordedEvent, 0, pageSize)
	for {
		if err := ctx.Err(); err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		buf = buf[:0]
		b.mu.RLock()
		if b.closed {
			b.mu.RUnlock()
			yield(eventstore.RecordedEvent{}, eventstore.ErrClosed)
			return
		}
		more := true
		for len(buf) < pageSize {
			e, ok := next()
			if !ok {
				more = false
				break
			}
			e.Data, e.Metadata = clone(e.Data), clone(e.Metadata)
			buf = append(buf, e)
		}
		b.mu.RUnlock()
		for _, e := range buf {
			if !yield(e, nil) {
				return
			}
		}
		if !more {
			return
		}
	}
}

// StreamVersion implements [eventstore.Backend].
func (b *Backend) StreamVersion(ctx context.Context, streamID string) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, eventstore.ErrClosed
	}
	if s := b.streams[streamID]; s != nil {
		return int64(len(s.positions)) - 1, nil
	}
	return -1, nil
}

// ListStreams implements [eventstore.Backend].
func (b *Backend) ListStreams(ctx context.Context, opts eventstore.ListOptions) iter.Seq2[eventstore.StreamInfo, error] {
	return func(yield func(eventstore.StreamInfo, error) bool) {
		after, count := opts.After, 0
		for {
			if err := ctx.Err(); err != nil {
				yield(eventstore.StreamInfo{}, err)
				return
			}
			b.mu.RLock()
			if b.closed {
				b.mu.RUnlock()
				yield(eventstore.StreamInfo{}, eventstore.ErrClosed)
				return
			}
			var ids []string
			for id := range b.streams {
				if id > after && strings.HasPrefix(id, opts.Prefix) &&
					(opts.Category == "" || eventstore.Category(id) == opts.Category) {
					ids = append(ids, id)
				}
			}
			sort.Strings(ids)
			ids = ids[:min(len(ids), pageSize)]
			page := make([]eventstore.StreamInfo, len(ids))
			for i, id := range ids {
				s := b.streams[id]
				page[i] = eventstore.StreamInfo{
					ID:        id,
					Version:   int64(len(s.positions)) - 1,
					CreatedAt: s.createdAt,
					UpdatedAt: s.updatedAt,
				}
			}
			b.mu.RUnlock()
			for _, info := range page {
				if !yield(info, nil) {
					return
				}
				if count++; count == opts.Limit {
					return
				}
			}
			if len(page) < pageSize {
				return
			}
			after = page[len(page)-1].ID
		}
	}
}

// DeleteStream implements [eventstore.Backend].
func (b *Backend) DeleteStream(ctx context.Context, streamID string, expected eventstore.ExpectedVersion) error {
	return b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return d.deleteStream(streamID, expected)
	})
}

func (d *data) deleteStream(streamID string, expected eventstore.ExpectedVersion) error {
	s := d.streams[streamID]
	actual := int64(-1)
	if s != nil {
		actual = int64(len(s.positions)) - 1
	}
	if err := expected.Check(streamID, actual); err != nil {
		return err
	}
	if s == nil {
		return eventstore.ErrStreamNotFound
	}
	if d.earlier == nil {
		d.earlier = make(map[string][]int64)
	}
	d.earlier[streamID] = append(d.earlier[streamID], s.positions[s.pruned:]...)
	delete(d.streams, streamID)
	delete(d.snapshots, streamID)
	return nil
}

// clone copies b, returning nil for an empty slice so that both backends
// read empty data the same way.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// PurgeStream implements [eventstore.Purger]. The purged events' slots in
// the log are emptied, so positions are never reused.
func (b *Backend) PurgeStream(ctx context.Context, streamID string) (int64, error) {
	var n int64
	err := b.write(ctx, func(d *data) error {
		var err error
		n, err = d.purgeStream(streamID)
		return err
	})
	return n, err
}

func (d *data) purgeStream(streamID string) (int64, error) {
	// The log may be shared with a transaction's copy: empty the slots in
	// a log of its own.
	d.log = slices.Clone(d.log)
	var n int64
	for i, e := range d.log {
		if e.Position != 0 && e.StreamID == streamID {
			delete(d.ids, e.ID)
			d.log[i] = eventstore.RecordedEvent{}
			n++
		}
	}
	if n == 0 && !d.purged[streamID] {
		return 0, eventstore.ErrStreamNotFound
	}
	delete(d.streams, streamID)
	delete(d.snapshots, streamID)
	delete(d.earlier, streamID)
	for _, c := range d.consumers {
		c.parked = slices.DeleteFunc(c.parked, func(p eventstore.ParkedEvent) bool { return p.StreamID == streamID })
	}
	if d.purged == nil {
		d.purged = make(map[string]bool)
	}
	d.purged[streamID] = true
	return n, nil
}

// RemoveTombstone implements [eventstore.Purger].
func (b *Backend) RemoveTombstone(ctx context.Context, streamID string) error {
	return b.write(ctx, func(d *data) error {
		if !d.purged[streamID] {
			return eventstore.ErrStreamNotFound
		}
		delete(d.purged, streamID)
		return nil
	})
}
