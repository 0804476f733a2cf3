package sqlite

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edge-es/eventstore"
	"github.com/google/uuid"
)

// pageSize is how many rows one query of a read sequence fetches. Every
// page is a query of its own: no connection, cursor or read transaction is
// held while the caller's loop body runs, however long the read, so the
// body may write to the store and a long read never pins the WAL.
const pageSize = 512

// maxUnion is the most values of one filter field that a ReadAll query
// turns into one index walk each (merged in position order). Beyond it,
// the query walks the log in position order and filters.
const maxUnion = 16

// maxPushdown is the most values of one filter field that a ReadAll query
// binds into an IN list. A longer field is matched in Go, with a set,
// while SQL walks the index of another field or the log: SQLite limits the
// variables of a statement (32,766), and a union repeats each IN list in
// every arm, up to maxUnion times.
const maxPushdown = 500

// eventCols are the columns of an event as read. Events carry their
// stream's key, not its ID: reads find the ID in the Backend's streamIDs
// (see eventScanner.resolve), rather than looking it up for every row.
// The checksum comes last, so that a read without
// [Options.VerifyChecksums] can leave it out (see withoutChecksum).
const eventCols = `e.position, e.id, e.stream, e.life, e.version, e.type, e.data, e.metadata, e.recorded_at` + checksumCol

// withoutLife returns an events query without its life column.
func withoutLife(query string) string {
	return strings.ReplaceAll(query, "e.stream, e.life, e.version", "e.stream, e.version")
}

// checksumCol is the last of eventCols.
const checksumCol = `, e.checksum`

// withoutChecksum returns an events query without its checksum column.
// Every column read costs several calls into the driver on every row;
// a read that does not check checksums does not pay for them.
func withoutChecksum(query string) string {
	return strings.ReplaceAll(query, "e.recorded_at"+checksumCol, "e.recorded_at")
}

const (
	sqlReadStreamFirst = `SELECT ` + eventCols + `
	FROM streams s JOIN events e ON e.stream = s.sk AND e.life = s.life
	WHERE s.id = ? AND s.state = 0 AND e.version >= ?
	ORDER BY e.version LIMIT ?`
	sqlReadStreamFirstBack = `SELECT ` + eventCols + `
	FROM streams s JOIN events e ON e.stream = s.sk AND e.life = s.life
	WHERE s.id = ? AND s.state = 0 AND e.version <= ?
	ORDER BY e.version DESC LIMIT ?`
	sqlReadStreamNext = `SELECT ` + eventCols + `
	FROM events e WHERE e.stream = ? AND e.life = ? AND e.version > ?
	ORDER BY e.version LIMIT ?`
	sqlReadStreamNextBack = `SELECT ` + eventCols + `
	FROM events e WHERE e.stream = ? AND e.life = ? AND e.version < ?
	ORDER BY e.version DESC LIMIT ?`
)

// row is an event as read, with the life of its stream.
type row struct {
	eventstore.RecordedEvent
	sk, life int64
}

// ReadStream implements [eventstore.Backend].
func (b *Backend) ReadStream(ctx context.Context, stream string, opts eventstore.ReadOptions) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		if err := b.checkOpen(); err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		remaining := opts.Limit
		query, from := sqlReadStreamFirst, opts.From
		if opts.Backward {
			query = sqlReadStreamFirstBack
			if from == 0 {
				from = math.MaxInt64
			}
		}
		sc := b.newScanner(true)
		defer sc.release()
		page, err := sc.query(ctx, query, stream, from, pageLimit(remaining, false))
		if err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		if len(page) == 0 {
			// Past the end, or no such stream: only the latter is an error.
			v, err := b.StreamVersion(ctx, stream)
			if err == nil && v < 0 {
				err = eventstore.ErrStreamNotFound
			}
			if err != nil {
				yield(eventstore.RecordedEvent{}, err)
			}
			return
		}
		// Later pages stay on the life the first one found.
		sk, life := page[0].sk, page[0].life
		query = sqlReadStreamNext
		if opts.Backward {
			query = sqlReadStreamNextBack
		}
		for {
			full := len(page) == pageLimit(remaining, false)
			for i := range page {
				if !yield(page[i].RecordedEvent, nil) {
					return
				}
			}
			if remaining > 0 {
				if remaining -= len(page); remaining == 0 {
					return
				}
			}
			if !full {
				return
			}
			last := page[len(page)-1].Version
			page, err = sc.query(ctx, query, sk, life, last, pageLimit(remaining, false))
			if err != nil {
				yield(eventstore.RecordedEvent{}, err)
				return
			}
		}
	}
}

// pageLimit is the LIMIT of the next page for a read with remaining events
// to go (0: no limit). When rows are filtered in Go the limit counts
// matches, not rows, so every page is full size.
func pageLimit(remaining int, filtered bool) int {
	if remaining > 0 && remaining < pageSize && !filtered {
		return remaining
	}
	return pageSize
}

// ReadAll implements [eventstore.Backend].
func (b *Backend) ReadAll(ctx context.Context, opts eventstore.ReadOptions, filter eventstore.Filter) iter.Seq2[eventstore.RecordedEvent, error] {
	return func(yield func(eventstore.RecordedEvent, error) bool) {
		if err := b.checkOpen(); err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		match, err := filter.Matcher()
		if err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		q := b.buildAllQuery(filter, opts.Backward)
		// The bound is exclusive: one past From, towards where the read
		// comes from. A backward read from 0 or from the largest position
		// starts at the end, where From+1 would overflow. (The bound leaves
		// out position MaxInt64 itself, which the log would reach after
		// 9.2e18 appends.)
		bound := opts.From - 1
		if opts.Backward {
			bound = opts.From + 1
			if opts.From == 0 || opts.From == math.MaxInt64 {
				bound = math.MaxInt64
			}
		}
		if err := q.seek(ctx, b, bound); err != nil {
			yield(eventstore.RecordedEvent{}, err)
			return
		}
		remaining := opts.Limit
		// Only a walk of the stream index resumes at a (life, version):
		// other reads leave the life column out.
		sc := b.newScanner(q.from != nil)
		defer sc.release()
		for {
			limit := pageLimit(remaining, q.residual)
			page, err := sc.query(ctx, q.sql, q.args(bound, limit)...)
			if err != nil {
				yield(eventstore.RecordedEvent{}, err)
				return
			}
			q.advance(page)
			for i := range page {
				if q.residual && !match(page[i].RecordedEvent) {
					continue
				}
				if !yield(page[i].RecordedEvent, nil) {
					return
				}
				if remaining > 0 {
					if remaining--; remaining == 0 {
						return
					}
				}
			}
			if len(page) < limit {
				return
			}
			bound = page[len(page)-1].Position
		}
	}
}

// allQuery is the SQL of a filtered ReadAll page.
type allQuery struct {
	sql      string
	p        pushdown
	backward bool
	// residual is set when some of the filter is left for Go to check.
	residual bool
	// from holds, when streams drive the query, where each stream's walk
	// of events_stream resumes: a (life, version) that the next event of
	// the stream lies after (forward) or at or before (backward). Within a
	// stream that order is position order, so the walk seeks there
	// instead of skipping every event before the bound.
	from []streamSeek
}

type streamSeek struct{ life, version int64 }

// args returns the arguments for a page after (forward) or before
// (backward) position bound, of at most limit rows.
func (q *allQuery) args(bound int64, limit int) []any {
	if len(q.p.driveVals) == 0 {
		return q.p.args(nil, nil, bound, limit)
	}
	var args []any
	for i := range q.p.driveVals {
		var from *streamSeek
		if q.from != nil {
			from = &q.from[i]
		}
		args = append(args, q.p.args(&q.p.driveVals[i], from, bound, limit)...)
	}
	if len(q.p.driveVals) > 1 {
		args = append(args, limit)
	}
	return args
}

// seek finds where each stream's walk starts, for a read from bound.
func (q *allQuery) seek(ctx context.Context, b *Backend, bound int64) error {
	if q.from == nil {
		return nil
	}
	for i, stream := range q.p.driveVals {
		switch {
		case !q.backward && bound <= 0:
			q.from[i] = streamSeek{-1, -1}
		case q.backward && bound == math.MaxInt64:
			q.from[i] = streamSeek{math.MaxInt64, math.MaxInt64}
		default:
			at := bound
			if q.backward {
				at--
			}
			life, version, found, err := b.lastAtOrBefore(ctx, stream, at)
			if err != nil {
				return err
			}
			if !found {
				life, version = -1, -1
			}
			q.from[i] = streamSeek{life, version}
		}
	}
	return nil
}

// advance moves each stream's walk past the rows of page.
func (q *allQuery) advance(page []row) {
	if q.from == nil {
		return
	}
	for _, r := range page {
		i, ok := slices.BinarySearch(q.p.driveVals, r.StreamID)
		if !ok {
			continue
		}
		if q.backward {
			q.from[i] = streamSeek{r.life, r.Version - 1}
		} else {
			q.from[i] = streamSeek{r.life, r.Version}
		}
	}
}

// lastAtOrBefore finds the (life, version) of the stream's last event at
// or before position p: found is false when it has none. Within a stream
// positions grow with (life, version), so it is a binary search of
// events_stream, a few dozen seeks however long the stream.
func (b *Backend) lastAtOrBefore(ctx context.Context, stream string, p int64) (life, version int64, found bool, err error) {
	var sk int64
	if err := b.reader.QueryRowContext(ctx, `SELECT sk FROM streams WHERE id = ?`, stream).Scan(&sk); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, 0, false, nil
		}
		return 0, 0, false, fail(ctx, err)
	}
	type at struct{ life, version, position int64 }
	get := func(query string, args ...any) (at, bool, error) {
		var e at
		err := b.reader.QueryRowContext(ctx, query, args...).Scan(&e.life, &e.version, &e.position)
		if errors.Is(err, sql.ErrNoRows) {
			return e, false, nil
		}
		return e, err == nil, fail(ctx, err)
	}
	last, ok, err := get(`SELECT life, version, position FROM events WHERE stream = ? ORDER BY life DESC, version DESC LIMIT 1`, sk)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	if last.position <= p {
		return last.life, last.version, true, nil
	}
	// The latest life whose first event is at or before p.
	const firstOfLife = `SELECT life, version, position FROM events
		WHERE stream = ?1 AND life = (SELECT max(life) FROM events WHERE stream = ?1 AND life <= ?2)
		ORDER BY version LIMIT 1`
	first, ok, err := get(firstOfLife, sk, last.life)
	for ; err == nil && ok && first.position > p; first, ok, err = get(firstOfLife, sk, first.life-1) {
	}
	if err != nil || !ok {
		return 0, 0, false, err
	}
	end, _, err := get(`SELECT life, version, position FROM events WHERE stream = ? AND life = ? ORDER BY version DESC LIMIT 1`, sk, first.life)
	if err != nil {
		return 0, 0, false, err
	}
	if end.position <= p {
		return end.life, end.version, true, nil
	}
	// The answer's version is in [lo, hi).
	lo, hi := first.version, end.version
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		e, ok, err := get(`SELECT life, version, position FROM events WHERE stream = ? AND life = ? AND version >= ? ORDER BY version LIMIT 1`, sk, first.life, mid)
		switch {
		case err != nil:
			return 0, 0, false, err
		case ok && e.version < hi && e.position <= p:
			lo = e.version
		default:
			hi = mid
		}
	}
	return first.life, lo, true, nil
}

// buildAllQuery pushes what it can of f into SQL. One field "drives" the
// query: its values become one index walk each (the stream index in
// (life, version) order, which is position order within a stream, or the
// category or type index in position order), merged by a UNION ALL; the
// other fields become plain conditions, marked with a unary + so that
// SQLite does not walk their index instead and sort. The literal prefix of
// StreamGlob narrows the stream ID range, and when that prefix holds a '-'
// it fixes the category too, so "order-*" walks the category index. What
// SQL cannot say (the rest of the glob, Payload, Match, a field of more
// than maxPushdown values) is checked in Go. Without [Options.TypeIndex],
// types never drive: they are a plain condition.
func (b *Backend) buildAllQuery(f eventstore.Filter, backward bool) allQuery {
	p := pushDown(f, b.typeIndex)
	order := "ASC"
	if backward {
		order = "DESC"
	}
	one := p.selectOne(backward)
	q := allQuery{p: p, backward: backward, residual: p.residual}
	if p.driveCol == colStream {
		q.from = make([]streamSeek, len(p.driveVals))
	}
	if len(p.driveVals) <= 1 {
		q.sql = one
		return q
	}
	parts := make([]string, len(p.driveVals))
	for i := range parts {
		parts[i] = "SELECT * FROM (" + one + ")"
	}
	q.sql = strings.Join(parts, " UNION ALL ") + " ORDER BY 1 " + order + " LIMIT ?"
	return q
}

// The columns a filter field is pushed down on.
const (
	colStream   = "e.stream"
	colCategory = "e.category"
	colType     = "e.type"
)

// pushdown is what of a filter goes into SQL: the field that drives the
// query, and plain conditions on the others.
type pushdown struct {
	driveCol  string   // the driving column, or empty
	driveIdx  string   // its index
	driveVals []string // its values: one index walk each
	conds     []string // the other conditions
	condArgs  []any    // their arguments
	residual  bool     // something is left for Go to check
}

// pushDown decides what of f goes into SQL; see buildAllQuery.
func pushDown(f eventstore.Filter, typeIndex bool) pushdown {
	streams, categories, types := dedup(f.Streams), dedup(f.Categories), dedup(f.Types)
	prefix := globPrefix(f.StreamGlob)
	if i := strings.IndexByte(prefix, '-'); i >= 0 && (len(categories) == 0 || len(categories) > maxPushdown) {
		// The glob fixes the category; a long Categories list is still
		// checked in Go.
		categories = []string{prefix[:i]}
	}
	p := pushdown{residual: f.StreamGlob != "" || len(f.Payload) > 0 || f.Match != nil}
	p.cond(colStream, "events_stream", streams, true)
	p.cond(colCategory, "events_category", categories, true)
	p.cond(colType, "events_type", types, typeIndex)
	if prefix != "" {
		rng := "id >= ?"
		p.condArgs = append(p.condArgs, prefix)
		if upper, ok := prefixEnd(prefix); ok {
			rng += " AND id < ?"
			p.condArgs = append(p.condArgs, upper)
		}
		p.conds = append(p.conds, "+e.stream IN (SELECT sk FROM streams WHERE "+rng+")")
	}
	return p
}

// cond pushes down the condition that col is one of vals: as the driving
// field when it is the first short enough (and indexed), as a plain
// condition otherwise, or, beyond maxPushdown values, not at all.
func (p *pushdown) cond(col, index string, vals []string, indexed bool) {
	if len(vals) == 0 {
		return
	}
	if len(vals) > maxPushdown {
		p.residual = true
		return
	}
	if p.driveCol == "" && len(vals) <= maxUnion && indexed {
		p.driveCol, p.driveIdx, p.driveVals = col, index, vals
		return
	}
	in := "?" + strings.Repeat(", ?", len(vals)-1)
	switch col {
	case colStream:
		p.conds = append(p.conds, "+e.stream IN (SELECT sk FROM streams WHERE id IN ("+in+"))")
	case colCategory:
		p.conds = append(p.conds, "+e.category IN (SELECT ck FROM stream_categories WHERE name IN ("+in+"))")
	default:
		p.conds = append(p.conds, "+"+col+" IN ("+in+")")
	}
	for _, v := range vals {
		p.condArgs = append(p.condArgs, v)
	}
}

// driveCond is the condition of one index walk on the driving column.
func (p *pushdown) driveCond(backward bool) string {
	switch p.driveCol {
	case colStream:
		if backward {
			return "e.stream = (SELECT sk FROM streams WHERE id = ?) AND (e.life, e.version) <= (?, ?)"
		}
		return "e.stream = (SELECT sk FROM streams WHERE id = ?) AND (e.life, e.version) > (?, ?)"
	case colCategory:
		return "e.category = (SELECT ck FROM stream_categories WHERE name = ?)"
	}
	return p.driveCol + " = ?"
}

// selectOne returns the query of one index walk: for one value of the
// driving field, or the whole log when there is none.
func (p *pushdown) selectOne(backward bool) string {
	cmp, order := ">", "ASC"
	if backward {
		cmp, order = "<", "DESC"
	}
	// INDEXED BY, because the planner, seeing the position range, may
	// prefer walking the whole log by primary key over the driving index.
	from := "events e"
	var where strings.Builder
	if p.driveCol != "" {
		from += " INDEXED BY " + p.driveIdx
		where.WriteString(p.driveCond(backward) + " AND ")
	}
	where.WriteString("e.position " + cmp + " ?")
	for _, c := range p.conds {
		where.WriteString(" AND " + c)
	}
	orderBy := "e.position " + order
	if p.driveCol == colStream {
		orderBy = "e.life " + order + ", e.version " + order
	}
	return "SELECT " + eventCols + " FROM " + from + " WHERE " + where.String() +
		" ORDER BY " + orderBy + " LIMIT ?"
}

// args returns the arguments of one index walk.
func (p *pushdown) args(drive *string, from *streamSeek, bound int64, limit int) []any {
	args := make([]any, 0, len(p.condArgs)+5)
	if drive != nil {
		args = append(args, *drive)
	}
	if from != nil {
		args = append(args, from.life, from.version)
	}
	args = append(args, bound)
	args = append(args, p.condArgs...)
	return append(args, limit)
}

// globPrefix returns the literal start of a path.Match pattern: everything
// before its first metacharacter.
func globPrefix(pattern string) string {
	if i := strings.IndexAny(pattern, `*?[\`); i >= 0 {
		return pattern[:i]
	}
	return pattern
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, in SQLite's byte order; ok is false when there is
// none (a prefix of only 0xFF bytes).
func prefixEnd(prefix string) (string, bool) {
	p := []byte(prefix)
	for len(p) > 0 && p[len(p)-1] == 0xFF {
		p = p[:len(p)-1]
	}
	if len(p) == 0 {
		return "", false
	}
	p[len(p)-1]++
	return string(p), true
}

// dedup returns vals sorted, without duplicates; vals itself when it is
// so already, or when it is too long to push into SQL anyway (sorting
// tens of thousands of values would cost more than matching them in Go,
// duplicates or not).
func dedup(vals []string) []string {
	if len(vals) > maxPushdown {
		return vals
	}
	strict := true
	for i := 1; i < len(vals) && strict; i++ {
		strict = vals[i-1] < vals[i]
	}
	if strict {
		return vals
	}
	out := slices.Clone(vals)
	slices.Sort(out)
	return slices.Compact(out)
}

// queryPage runs a page query on the reader pool, appends each row that
// scan makes of it to buf[:0] and returns buf. The rows are closed before
// it returns, so nothing is held while the caller yields the page.
func queryPage[T any](ctx context.Context, b *Backend, buf []T, scan func(*sql.Rows) (T, error), query string, args ...any) ([]T, error) {
	buf = buf[:0]
	start := b.logStart()
	rows, err := b.reader.QueryContext(ctx, query, args...)
	if err != nil {
		b.logSQL(ctx, query, args, start, err)
		return buf, fail(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return buf, fail(ctx, err)
		}
		buf = append(buf, v)
	}
	err = rows.Err()
	b.logSQL(ctx, query, args, start, err)
	return buf, fail(ctx, err)
}

// eventScanner reads the pages of one read sequence. Its row buffer
// comes from, and goes back to, the Backend's pool, so that a read does not
// grow a page from nil; and it shares between the events of a read what
// they have in common: the stream ID of the previous row, the strings of
// the types seen, and blocks of memory that hold their data and metadata.
type eventScanner struct {
	b     *Backend
	page  *[]row
	arena []byte            // the block the next data is copied into
	types map[string]string // each type read, as one string
	sums  []uint32          // the checksums of the page's rows, with VerifyChecksums
	used  int               // the most rows a page of this read held
	life  bool              // whether rows are read with their life

	// The columns of the row being scanned, and pointers to them for
	// Scan: set up once for the whole read, not for every row.
	col  scannedRow
	dest []any
}

// scannedRow is an eventCols row as Scan leaves it. The integers are
// scanned into any and converted by toInt64: Scan converts into an *int64
// through reflection, a cost paid for six columns of every row.
type scannedRow struct {
	position, sk, life, version, at, sum any
	id, typ, data, meta                  sql.RawBytes
}

// toInt64 converts a column scanned into any as Scan would into an int64,
// quickly for the int64 the driver returns for an INTEGER.
func toInt64(v any) (int64, error) {
	if i, ok := v.(int64); ok {
		return i, nil
	}
	var n sql.NullInt64
	if err := n.Scan(v); err != nil {
		return 0, err
	}
	if !n.Valid {
		return 0, errors.New("converting NULL to int64 is unsupported")
	}
	return n.Int64, nil
}

// arenaBlock is the size of the blocks data is copied into: an event
// kept by the caller keeps its block alive, at most this much.
const arenaBlock = 32 << 10

// maxTypes bounds the types a read keeps one string of.
const maxTypes = 256

// newScanner returns a scanner for one read sequence; with life, its rows
// carry their stream's life, which only some reads need.
func (b *Backend) newScanner(life bool) *eventScanner {
	sc := &eventScanner{b: b, life: life}
	c := &sc.col
	sc.dest = []any{&c.position, &c.id, &c.sk}
	if life {
		sc.dest = append(sc.dest, &c.life)
	}
	sc.dest = append(sc.dest, &c.version, &c.typ, &c.data, &c.meta, &c.at)
	if b.opts.VerifyChecksums {
		sc.dest = append(sc.dest, &c.sum)
	}
	if p, ok := b.pages.Get().(*[]row); ok {
		sc.page = p
	} else {
		p := make([]row, 0, pageSize)
		sc.page = &p
	}
	return sc
}

// release gives the row buffer back, empty, once the read is over.
func (sc *eventScanner) release() {
	clear((*sc.page)[:sc.used])
	*sc.page = (*sc.page)[:0]
	sc.b.pages.Put(sc.page)
}

// query runs a page query for events (columns eventCols) into the
// scanner's buffer, which the next query reuses.
func (sc *eventScanner) query(ctx context.Context, query string, args ...any) ([]row, error) {
	sc.sums = sc.sums[:0]
	if !sc.b.opts.VerifyChecksums {
		query = withoutChecksum(query)
	}
	if !sc.life {
		query = withoutLife(query)
	}
	page, err := queryPage(ctx, sc.b, *sc.page, sc.scan, query, args...)
	*sc.page = page
	sc.used = max(sc.used, len(page))
	if err != nil {
		return page, err
	}
	if err := sc.b.streamIDs.resolve(ctx, sc.b, page); err != nil {
		return page, err
	}
	if sc.b.opts.VerifyChecksums {
		for i := range page {
			r := &page[i]
			if sc.sums[i] != checksum(r.StreamID, r.Version, r.Type, r.Data, r.Metadata) {
				return page[:0], fmt.Errorf("%w: %s@%d at position %d", ErrChecksum, r.StreamID, r.Version, r.Position)
			}
		}
	}
	return page, nil
}

func (sc *eventScanner) scan(rows *sql.Rows) (row, error) {
	var r row
	c := &sc.col
	if err := rows.Scan(sc.dest...); err != nil {
		return r, err
	}
	var ints [5]int64
	for i, v := range [...]any{c.position, c.sk, c.life, c.version, c.at} {
		if i == 2 && !sc.life {
			continue
		}
		var err error
		if ints[i], err = toInt64(v); err != nil {
			return r, err
		}
	}
	r.Position, r.sk, r.life, r.Version = ints[0], ints[1], ints[2], ints[3]
	at := ints[4]
	var ok bool
	if r.Type, ok = sc.types[string(c.typ)]; !ok {
		r.Type = string(c.typ)
		if sc.types == nil {
			sc.types = make(map[string]string)
		}
		if len(sc.types) < maxTypes {
			sc.types[r.Type] = r.Type
		}
	}
	if sc.b.opts.VerifyChecksums {
		sum, err := toInt64(c.sum)
		if err != nil {
			return r, err
		}
		sc.sums = append(sc.sums, uint32(sum))
	}
	var err error
	if r.ID, err = uuid.FromBytes(c.id); err != nil {
		return r, fmt.Errorf("event at position %d: id: %w", r.Position, err)
	}
	r.Data, r.Metadata = sc.keep(c.data), sc.keep(c.meta)
	r.RecordedAt = time.Unix(0, at).UTC()
	return r, nil
}

// keep copies bytes the driver owns into the current block; empty is nil,
// as in every backend. The copy's capacity ends with it, so that an append
// to it never writes over the next event's.
func (sc *eventScanner) keep(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	if len(b) > arenaBlock/4 {
		return bytes.Clone(b)
	}
	if cap(sc.arena)-len(sc.arena) < len(b) {
		sc.arena = make([]byte, 0, arenaBlock)
	}
	start := len(sc.arena)
	sc.arena = append(sc.arena, b...)
	return sc.arena[start:len(sc.arena):len(sc.arena)]
}

// streamIDs maps stream keys to stream IDs, for reads. A stream's key
// never changes hands (its record is never deleted, see schema.sql), so an
// entry never goes stale. Bounded: it starts over when full.
type streamIDs struct {
	mu sync.RWMutex
	m  map[int64]string
}

const streamIDsSize = 1 << 16

// resolve fills in the stream ID of every row of page, reading the ones
// it does not know in one query. An event whose stream has no record (a
// file edited by hand; Verify reports it) gets the empty ID.
func (c *streamIDs) resolve(ctx context.Context, b *Backend, page []row) error {
	var missing []any
	c.mu.RLock()
	for i := range page {
		id, ok := c.m[page[i].sk]
		if !ok {
			missing = append(missing, page[i].sk)
		}
		page[i].StreamID = id
	}
	c.mu.RUnlock()
	if len(missing) == 0 {
		return nil
	}
	slices.SortFunc(missing, func(a, b any) int { return cmp.Compare(a.(int64), b.(int64)) })
	missing = slices.Compact(missing)
	found := make(map[int64]string, len(missing))
	for chunk := range slices.Chunk(missing, maxIDsPerQuery) {
		query := `SELECT sk, id FROM streams WHERE sk IN (?` + strings.Repeat(", ?", len(chunk)-1) + `)`
		err := b.eachRow(ctx, func(rows *sql.Rows) error {
			var sk int64
			var id string
			if err := rows.Scan(&sk, &id); err != nil {
				return err
			}
			found[sk] = id
			return nil
		}, query, chunk...)
		if err != nil {
			return err
		}
	}
	c.mu.Lock()
	if c.m == nil || len(c.m)+len(found) > streamIDsSize {
		c.m = make(map[int64]string, len(found))
	}
	maps.Copy(c.m, found)
	c.mu.Unlock()
	for i := range page {
		if page[i].StreamID == "" {
			page[i].StreamID = found[page[i].sk]
		}
	}
	return nil
}

// clone copies bytes the driver owns; empty is nil, as in every backend.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// sqlListStreams derives each stream's version and last update from the
// last event of its current life, unless its record holds a later one (see
// streams in schema.sql).
const sqlListStreams = `SELECT s.id, max(s.version, coalesce(e.version, -1)), s.created_at,
		CASE WHEN e.version >= s.version THEN e.recorded_at ELSE s.updated_at END
	FROM streams s LEFT JOIN events e ON e.position =
		(SELECT position FROM events WHERE stream = s.sk AND life = s.life ORDER BY version DESC LIMIT 1)
	WHERE s.state = 0 AND s.id > ?`

// ListStreams implements [eventstore.Backend].
func (b *Backend) ListStreams(ctx context.Context, opts eventstore.ListOptions) iter.Seq2[eventstore.StreamInfo, error] {
	return func(yield func(eventstore.StreamInfo, error) bool) {
		if err := b.checkOpen(); err != nil {
			yield(eventstore.StreamInfo{}, err)
			return
		}
		query := sqlListStreams
		var extra []any
		if opts.Category != "" {
			query += " AND s.category = (SELECT ck FROM stream_categories WHERE name = ?)"
			extra = append(extra, opts.Category)
		}
		if opts.Prefix != "" {
			query += " AND s.id >= ?"
			extra = append(extra, opts.Prefix)
			if upper, ok := prefixEnd(opts.Prefix); ok {
				query += " AND s.id < ?"
				extra = append(extra, upper)
			}
		}
		query += " ORDER BY s.id LIMIT ?"
		after, remaining := opts.After, opts.Limit
		page := make([]eventstore.StreamInfo, 0, pageSize)
		for {
			limit := pageLimit(remaining, false)
			args := append(append([]any{after}, extra...), limit)
			var err error
			page, err = queryPage(ctx, b, page, scanStream, query, args...)
			if err != nil {
				yield(eventstore.StreamInfo{}, err)
				return
			}
			for _, info := range page {
				if !yield(info, nil) {
					return
				}
			}
			if remaining > 0 {
				if remaining -= len(page); remaining == 0 {
					return
				}
			}
			if len(page) < limit {
				return
			}
			after = page[len(page)-1].ID
		}
	}
}

func scanStream(rows *sql.Rows) (eventstore.StreamInfo, error) {
	var info eventstore.StreamInfo
	var created, updated int64
	if err := rows.Scan(&info.ID, &info.Version, &created, &updated); err != nil {
		return info, err
	}
	info.CreatedAt, info.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return info, nil
}
