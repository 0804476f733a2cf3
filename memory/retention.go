package memory

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/edge-es/eventstore"
)

var _ eventstore.Retainer = (*Backend)(nil)

// SetRetention implements [eventstore.Retainer].
func (b *Backend) SetRetention(ctx context.Context, p eventstore.RetentionPolicy) error {
	return b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, key := &d.retention, p.Stream
		if p.Stream == "" {
			m, key = &d.categories, p.Category
		}
		if p.Retention.IsZero() {
			delete(*m, key)
			return nil
		}
		if *m == nil {
			*m = make(map[string]eventstore.Retention)
		}
		(*m)[key] = p.Retention
		return nil
	})
}

// Retentions implements [eventstore.Retainer].
func (b *Backend) Retentions(ctx context.Context) ([]eventstore.RetentionPolicy, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, eventstore.ErrClosed
	}
	var out []eventstore.RetentionPolicy
	for _, id := range slices.Sorted(maps.Keys(b.retention)) {
		out = append(out, eventstore.RetentionPolicy{Stream: id, Retention: b.retention[id]})
	}
	for _, c := range slices.Sorted(maps.Keys(b.categories)) {
		out = append(out, eventstore.RetentionPolicy{Category: c, Retention: b.categories[c]})
	}
	return out, ctx.Err()
}

// RetainedFrom implements [eventstore.Retainer].
func (b *Backend) RetainedFrom(ctx context.Context, stream string, r eventstore.Retention, now time.Time) (int64, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return 0, eventstore.ErrClosed
	}
	s := b.streams[stream]
	if s == nil {
		return 0, eventstore.ErrStreamNotFound
	}
	return b.retainedFrom(s, r, now), nil
}

// retainedFrom is the first version of s that r retains at now.
func (d *data) retainedFrom(s *stream, r eventstore.Retention, now time.Time) int64 {
	end := int64(len(s.positions)) // one past the last version
	from := r.TruncateBefore
	if r.MaxCount > 0 {
		from = max(from, end-r.MaxCount)
	}
	from = min(from, end)
	if r.MaxAge <= 0 {
		return from
	}
	cutoff := now.Add(-r.MaxAge)
	for v := from; v < end; v++ {
		e := d.log[s.positions[v]-1]
		if e.Position != 0 && !e.RecordedAt.Before(cutoff) {
			return v
		}
	}
	return end
}

// StoredStreams implements [eventstore.Retainer].
func (b *Backend) StoredStreams(ctx context.Context, category, after string, limit int) ([]string, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, eventstore.ErrClosed
	}
	var ids []string
	add := func(id string) {
		if id > after && (category == "" || eventstore.Category(id) == category) {
			ids = append(ids, id)
		}
	}
	for id := range b.streams {
		add(id)
	}
	for id := range b.earlier {
		if b.streams[id] == nil {
			add(id)
		}
	}
	sort.Strings(ids)
	return ids[:min(len(ids), limit)], ctx.Err()
}

// PruneStream implements [eventstore.Retainer]. The removed events' slots
// in the log are emptied, as a purge's are, so positions are never reused.
func (b *Backend) PruneStream(ctx context.Context, req eventstore.PruneRequest) (eventstore.PruneBatch, error) {
	var res eventstore.PruneBatch
	err := b.write(ctx, func(d *data) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		res = d.pruneStream(req)
		return nil
	})
	return res, err
}

func (d *data) pruneStream(req eventstore.PruneRequest) eventstore.PruneBatch {
	var res eventstore.PruneBatch
	// The candidates, lowest positions first: the earlier lives', then
	// the expired versions of the current one.
	earlier := d.earlier[req.Stream]
	s := d.streams[req.Stream]
	var expired []int64
	if s != nil {
		expired = s.positions[s.pruned:max(s.pruned, d.retainedFrom(s, req.Retention, req.Now))]
	}
	lastVersion := int64(-1) // of the current life
	remove := func(p int64) {
		if d.logShared {
			d.log, d.logShared = slices.Clone(d.log), false
		}
		e := d.log[p-1]
		if e.Position == 0 {
			return // purged already
		}
		delete(d.ids, e.ID)
		d.log[p-1] = eventstore.RecordedEvent{}
		res.Events++
		if res.First == 0 {
			res.First = p
		}
		res.Last = p
	}
	var i int
	for i = 0; i < len(earlier) && earlier[i] <= req.MaxPosition; i++ {
		if res.Events == int64(req.Limit) {
			res.More = true
			break
		}
		remove(earlier[i])
	}
	if len(earlier) > 0 {
		if earlier = earlier[i:]; len(earlier) == 0 {
			delete(d.earlier, req.Stream)
		} else {
			d.earlier[req.Stream] = earlier
		}
	}
	j := 0
	if !res.More && len(earlier) == 0 {
		for ; j < len(expired) && expired[j] <= req.MaxPosition; j++ {
			if res.Events == int64(req.Limit) {
				res.More = true
				break
			}
			remove(expired[j])
			lastVersion = s.pruned + int64(j)
		}
	}
	if res.Events > 0 {
		if d.pruned == nil {
			d.pruned = make(map[string]bool)
		}
		d.pruned[req.Stream] = true
	}
	if lastVersion >= 0 {
		s.pruned = lastVersion + 1
		res.Snapshots = d.dropSnapshotsBelow(req.Stream, lastVersion)
	}
	if !res.More {
		res.KeptBack = int64(len(earlier) + len(expired) - j)
	}
	return res
}

// dropSnapshotsBelow deletes the snapshots of the stream's current life
// below version, and returns how many.
func (d *data) dropSnapshotsBelow(stream string, version int64) int64 {
	ls := d.snapshots[stream]
	if len(d.current(stream)) == 0 {
		return 0
	}
	i, _ := slices.BinarySearchFunc(ls.list, version, func(s eventstore.Snapshot, v int64) int { return cmp.Compare(s.Version, v) })
	if i == 0 {
		return 0
	}
	ls.list = slices.Clone(ls.list[i:])
	d.snapshots[stream] = ls
	return int64(i)
}

// Pruned implements [eventstore.Retainer].
func (b *Backend) Pruned(ctx context.Context, stream string) (bool, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return false, eventstore.ErrClosed
	}
	return b.pruned[stream], ctx.Err()
}
