package breakdown

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Key names the route a request was counted under. Its strings must be owned (not span memory).
type Key struct{ Service, Environment, Method, Route string }

// Request is a request span waiting for its descendants.
type Request struct {
	Key Key
	// ServiceID stands for Key.Service in the join (see AddSpan).
	ServiceID uint32
	// Failed is set for a request that failed (status error or 5xx). (Next to ServiceID: no padding, in a struct
	// that the join holds for every waiting request.)
	Failed  bool
	TraceID pcommon.TraceID
	Span    RequestSpan
	// Count is how many requests the span stands for (its sampling-adjusted count; 1 unsampled).
	Count uint64
	// Version is its service.version (owned).
	Version string
	// Unexplained is the failure's message when the request span recorded no exception of its own: it is grouped
	// as an error status unless a descendant's exception explains it.
	Unexplained string
}

// Limits bound the store.
type Limits struct {
	// Grace is how long a request waits, after it arrived, for descendants in later batches.
	Grace time.Duration
	// MaxSpans bounds the records held over all traces, descendants and waiting requests: MakeRoom records waiting
	// requests early to make room, and what still does not fit is dropped (counted).
	MaxSpans int
	// MaxSpansPerTrace bounds one trace's records (a 100,000-span trace keeps this many).
	MaxSpansPerTrace int
	// Shared, when set, counts the records of every store that shares MaxSpans (stores sharded by service):
	// the bound holds over them all.
	Shared *atomic.Int64
	// FreeEntries bounds the trace entries kept for reuse, and apart the spans' arrays (0: DefaultFreeEntries),
	// over every store that shares Free.
	FreeEntries int
	// Free, when set, counts what every store that shares it keeps for reuse (stores sharded by service): a
	// share of FreeEntries per shard would leave the shards that hold the busy services short, and the garbage
	// collector would take what their sweeps let go.
	Free *FreeCounts
}

// FreeCounts are the trace entries and spans' arrays kept for reuse by the stores that share them.
type FreeCounts struct{ entries, spans atomic.Int64 }

// DefaultFreeEntries is how many let-go trace entries a store keeps for reuse.
const DefaultFreeEntries = 4096

// Counts is what the store did, for own telemetry; Drain resets it.
type Counts struct {
	// Recorded requests; Late descendants, that came within a grace after their request was recorded (later ones
	// are orphans: nothing remembers a request longer).
	Recorded, Late int64
	// Dropped descendants: at a bound; Orphans: held for a trace whose request never arrived within the grace.
	Dropped, Orphans int64
	// Cycles counts requests whose descendants' parent links formed a cycle or repeated a span id.
	Cycles int64
	// Early counts the recorded requests that MakeRoom recorded before their grace ended (among Recorded).
	Early int64
}

// Add adds o's counts into c (stores sharded by service report as one).
func (c *Counts) Add(o Counts) {
	c.Recorded += o.Recorded
	c.Late += o.Late
	c.Dropped += o.Dropped
	c.Orphans += o.Orphans
	c.Cycles += o.Cycles
	c.Early += o.Early
}

// Store joins request spans with their descendants of the same service by trace, across batches: a request is
// recorded Grace after it arrived, with the descendants seen by then, or sooner when MakeRoom needs its records'
// room. It holds small per-span records, never spans,
// bounded in count. Not safe for concurrent use: the connector owns the lock and the clock.
//
// A batch lists a request's spans of one service together, most often (an SDK exports each span when it ends, a
// request after its children): the calls for one key in a row are a run, whose entry is detached (in no map) while
// the run lasts. A request in the run takes the entry along in the due queue, so that the common trace costs no map
// insertion, lookup or deletion; a run without a request puts its entry in records, where its request (in a later
// batch), or the sweep of a request that came earlier, finds it.
type Store struct {
	limits Limits
	// records holds the entries of runs without a request: descendants of a request in another batch or run, or
	// orphans, and entries that requests took from it.
	records map[recordsKey]*records
	due     queue[dueRequest] // in arrival order, hence in due order (one grace for all)
	// expiries says when to look at an entry again, about in time order: each entry is in it once, and put back
	// when it is not done with yet, so that a sweep never scans every entry.
	expiries queue[expiry]
	held     int
	// lastKey is the key of the run: when lastKnown, last is its entry (nil: it has none) and one lookup serves
	// the run. lastDue is the due sequence number of a request of lastKey that came before any entry (-1: none),
	// so that the descendant making the entry links them and the sweep needs no lookup.
	lastKey   recordsKey
	last      *records
	lastKnown bool
	lastDue   int
	// free holds records let go, reused for new traces; freeSpans the spans' arrays of recorded entries, reused by
	// the next entries that hold descendants.
	free      []*records
	freeSpans [][]Span
	// detachedDue holds, for the keys of the requests that took a detached entry lately, when the last of them is
	// due: it tells a waiting request (a new detached entry of its key goes to records, where its sweep finds it)
	// from a recorded one (its descendants that come within a grace are late) and from none (orphans). seed keys
	// its hash; swept is the last sweep's time: what was due by then is recorded.
	detachedDue dueTimes
	seed        uint64
	swept       int64
	counts      Counts
	compute     Computer
	// scratch joins a request's detached entry with the entry of its descendants in later runs.
	scratch []Span
	// dropKey is the key of the last DropSpan; when dropKnown, dropLate is how it counted (a run or a sweep, which
	// may change that, forgets it).
	dropKey   recordsKey
	dropKnown bool
	dropLate  bool
}

// recordsKey is one service's part of a trace: a request's tree stops at another service's spans.
type recordsKey struct {
	trace   pcommon.TraceID
	service uint32
}

type records struct {
	spans []Span
	// exceptions are the exception events of the spans, apart: few spans have any.
	exceptions []heldException
	// pending counts the requests not yet recorded; done is when the last one was (zero while some are pending or
	// none came yet). Times are Unix nanoseconds: a time.Time is three times the size.
	pending int
	done    int64
	// expires is when records without a request are let go.
	expires int64
	// inMap is set once the entry is in Store.records (else it is its run's, or a waiting request's).
	inMap bool
}

type heldException struct {
	span uint64
	Exception
}

type dueRequest struct {
	at  int64
	req Request
	// pending is the entry the request counted itself in (it existed: descendants came first); an entry with
	// pending requests stays in the map, so the pointer holds until the request is recorded.
	pending *records
}

// expiry holds its entry: an entry leaves the map only through its one expiry, so the pointer is always its own.
type expiry struct {
	at  int64
	key recordsKey
	r   *records
}

// NewStore returns an empty store.
func NewStore(limits Limits) *Store {
	if limits.Free == nil {
		limits.Free = &FreeCounts{}
	}
	return &Store{limits: limits, records: map[recordsKey]*records{}, seed: rand.Uint64()}
}

// of returns the records of one service's part of a trace, making them if needed (detached, for the run).
func (s *Store) of(trace pcommon.TraceID, service uint32, now time.Time) *records {
	k := recordsKey{trace, service}
	r := s.run(k)
	if r == nil {
		r = s.newRecords()
		s.last = r
	}
	r.expires = s.until(now)
	if s.lastDue >= 0 { // the run's request came first, without an entry: it takes this one
		if d := s.due.at(s.lastDue); d != nil && d.pending == nil {
			d.pending = r
			r.pending++
			s.taken(k, r, d.at)
		}
		s.lastDue = -1
	}
	return r
}

// taken notes that a request due at due took r, detached. When another request of its key waits with a detached
// entry, r goes to records instead, where that request's sweep finds what r holds of its descendants (one that
// ran on after it, listed among the other request's spans).
func (s *Store) taken(k recordsKey, r *records, due int64) {
	if prev, ok := s.detachedDue.set(s.hash(k), due); ok && prev > s.swept && !r.inMap {
		s.enter(k, r)
	}
}

// enter puts a detached entry in records, with its one expiry.
func (s *Store) enter(k recordsKey, r *records) {
	r.inMap = true
	s.records[k] = r
	s.expiries.push(expiry{r.expires, k, r})
}

// run makes k the run's key and returns its entry (nil: none yet), ending the run of another key.
func (s *Store) run(k recordsKey) *records {
	if s.lastKnown && s.lastKey == k {
		return s.last
	}
	s.endRun()
	r := s.records[k]
	s.lastKey, s.last, s.lastKnown, s.lastDue = k, r, true, -1
	s.dropKnown = false
	return r
}

// endRun ends the run: its detached entry, when no request took it, goes to records, unless its key's request was
// recorded lately (its descendants are late).
func (s *Store) endRun() {
	r := s.last
	s.last, s.lastKnown = nil, false
	if r == nil || r.inMap || r.pending > 0 {
		return
	}
	if s.late(s.lastKey, r.expires-int64(s.limits.Grace)) { // as of the run's last call
		s.counts.Late += int64(len(r.spans))
		s.counts.Dropped += int64(len(r.exceptions)) // as AddExceptions counts a late span's
		s.hold(-(len(r.spans) + len(r.exceptions)))
		s.recycle(r)
		return
	}
	s.enter(s.lastKey, r)
}

// late reports that a descendant of k arriving at t comes within a grace after a request of k with a detached
// entry was recorded without it.
func (s *Store) late(k recordsKey, t int64) bool {
	due, ok := s.detachedDue.get(s.hash(k))
	return ok && due <= s.swept && t-due < int64(s.limits.Grace)
}

// newRecords returns an empty entry, a let-go one when there is.
func (s *Store) newRecords() *records {
	var r *records
	if n := len(s.free); n > 0 {
		r, s.free = s.free[n-1], s.free[:n-1]
		s.limits.Free.entries.Add(-1)
	} else {
		r = &records{}
	}
	if n := len(s.freeSpans); n > 0 && r.spans == nil {
		r.spans, s.freeSpans = s.freeSpans[n-1], s.freeSpans[:n-1]
		s.limits.Free.spans.Add(-1)
	}
	return r
}

// AddRequest registers a request span; it is recorded Grace after now. A waiting request counts against MaxSpans
// as a descendant does: past it, the request gets no breakdown (counted dropped).
func (s *Store) AddRequest(req Request, now time.Time) {
	if s.full() {
		s.counts.Dropped++
		return
	}
	s.hold(1)
	// The entry exists when descendants came first (in the run, or in records). Otherwise the request waits in
	// the due queue alone, and descendants that come later make the entry: a request without descendants (a
	// single-span trace, the common case under load) costs no entry.
	d := dueRequest{at: s.until(now), req: req}
	k := recordsKey{req.TraceID, req.ServiceID}
	if r := s.run(k); r != nil {
		r.pending++
		r.done = 0
		d.pending = r
		if !r.inMap {
			s.taken(k, r, d.at)
		}
	} else {
		s.lastDue = s.due.end()
	}
	s.due.push(d)
}

// lookup returns the entry of a key, nil when there is none.
func (s *Store) lookup(k recordsKey) *records {
	if s.lastKnown && s.lastKey == k {
		return s.last
	}
	return s.records[k]
}

// AddExceptions holds the exception events of a descendant span added with AddSpan; each counts as a record.
func (s *Store) AddExceptions(trace pcommon.TraceID, service uint32, span uint64, exceptions []Exception, now time.Time) {
	r := s.of(trace, service, now)
	for _, e := range exceptions {
		if s.full() || r.pending == 0 && r.done != 0 {
			s.counts.Dropped++
			continue
		}
		r.exceptions = append(r.exceptions, heldException{span, e})
		s.hold(1)
	}
}

// AddSpan holds a descendant span of service's requests in the trace; one that comes within a grace after every
// request of its trace and service was recorded counts as late. service is the caller's number for the service
// (the requests' ServiceID): a key of fixed size is cheaper to hash and compare than the name.
func (s *Store) AddSpan(trace pcommon.TraceID, service uint32, span Span, now time.Time) {
	r := s.of(trace, service, now)
	switch {
	case r.pending == 0 && r.done != 0:
		s.counts.Late++
	case s.full() || len(r.spans) >= s.limits.MaxSpansPerTrace:
		s.counts.Dropped++
	default:
		r.spans = append(r.spans, span)
		s.hold(1)
	}
}

// Full reports MaxSpans reached: a descendant added now would be dropped, so a caller under load can skip reading it
// and call DropSpan instead.
func (s *Store) Full() bool { return s.full() }

// DropSpan counts a descendant that was not read because the store was Full, as AddSpan would have counted it: late
// when every request of its trace and service was recorded, else dropped. It makes no entry.
func (s *Store) DropSpan(trace pcommon.TraceID, service uint32) {
	k := recordsKey{trace, service}
	if !s.dropKnown || s.dropKey != k { // a trace's spans come together: one lookup serves them
		r := s.lookup(k)
		s.dropKey, s.dropKnown = k, true
		s.dropLate = r != nil && r.pending == 0 && r.done != 0 || r == nil && s.late(k, s.swept)
	}
	if s.dropLate {
		s.counts.Late++
		return
	}
	s.counts.Dropped++
}

// MakeRoom makes room for n more records (over the stores that share MaxSpans) from what has waited longest: a
// request is recorded before its grace ended, with the descendants it has by then; descendants still waiting for
// their request are let go (counted dropped). Under a load whose grace's worth of records passes the bound, each
// request waits as long as the bound allows (its descendants in the same batch, the common case, still join),
// rather than most requests getting no breakdown, and descendants whose requests never come (a service whose
// spans are not requests) cannot take the room from the rest. The caller makes room before a batch's spans, so that
// only what came in earlier batches goes; what then does not fit (a batch larger than MaxSpans) is dropped.
func (s *Store) MakeRoom(at time.Time, n int, record func(Request, Split)) {
	limit := int64(s.limits.MaxSpans - n)
	if s.heldAll() <= limit {
		return
	}
	s.endRun() // the run's entry may be a waiting request's; one without a request goes to records
	s.dropKnown = false
	if s.due.len() == 0 && s.expiries.len() == 0 {
		return
	}
	now := at.UnixNano()
	// What is due is recorded as a sweep would, so that swept can say so; then the early ones.
	for s.due.len() > 0 && s.due.front().at <= now {
		s.recordDue(s.due.pop(), now, record)
	}
	s.swept = max(s.swept, now)
	// Entries that are not let go here are put back; the budget bounds that work per call.
	budget := 4*n + 64
	for s.heldAll() > limit {
		e := s.oldestWaitingDescendants(now, &budget)
		if e != nil && (s.due.len() == 0 || e.at <= s.due.front().at) {
			x := s.expiries.pop()
			s.hold(-(len(x.r.spans) + len(x.r.exceptions)))
			s.counts.Dropped += int64(len(x.r.spans))
			s.release(x.key, x.r)
			continue
		}
		if s.due.len() == 0 {
			return
		}
		d := s.due.pop()
		s.counts.Early++
		if d.pending != nil && !d.pending.inMap && d.pending.pending == 1 {
			// Its detached entry's key must read as recorded, so that a descendant still to come is late (unless
			// another request of the key shares the entry and still waits).
			s.detachedDue.recorded(s.hash(recordsKey{d.req.TraceID, d.req.ServiceID}), now)
		}
		s.recordDue(d, now, record)
	}
}

// oldestWaitingDescendants returns the front of expiries once it is an entry of descendants that no request took
// (nil when the queue or the budget ends first). What it passes on the way goes back as Sweep would put it
// (requeue), or, when it took descendants since it was queued, at its new expiry.
func (s *Store) oldestWaitingDescendants(now int64, budget *int) *expiry {
	for ; s.expiries.len() > 0 && *budget > 0; *budget-- {
		if e := s.expiries.front(); e.r.pending == 0 && e.r.done == 0 && e.r.expires <= e.at {
			return e
		}
		if e := s.expiries.pop(); !s.requeue(e, now) {
			s.expiries.push(expiry{e.r.expires, e.key, e.r})
		}
	}
	return nil
}

// heldAll is the records held over the stores that share MaxSpans.
func (s *Store) heldAll() int64 {
	if s.limits.Shared != nil {
		return s.limits.Shared.Load()
	}
	return int64(s.held)
}

// Held is the number of records held: descendants and waiting requests.
func (s *Store) Held() int { return s.held }

func (s *Store) maxFree() int {
	if s.limits.FreeEntries > 0 {
		return s.limits.FreeEntries
	}
	return DefaultFreeEntries
}

// full reports MaxSpans reached, over the stores that share it.
func (s *Store) full() bool { return s.heldAll() >= int64(s.limits.MaxSpans) }

// hold counts n more records held (n < 0: let go).
func (s *Store) hold(n int) {
	s.held += n
	if s.limits.Shared != nil {
		s.limits.Shared.Add(int64(n))
	}
}

// Sweep records every request whose grace has ended, through record, and lets go of what nothing waits for.
func (s *Store) Sweep(at time.Time, record func(Request, Split)) {
	now := at.UnixNano()
	s.endRun()
	s.swept, s.dropKnown = now, false
	// A key is needed until a grace after its request is due: generations of two graces keep it two to four.
	s.detachedDue.rotate(now, 2*int64(s.limits.Grace))
	for s.due.len() > 0 && s.due.front().at <= now {
		s.recordDue(s.due.pop(), now, record)
	}
	// Entries put back below are due later than now: the loop ends before reaching them.
	for s.expiries.len() > 0 && s.expiries.front().at <= now {
		e := s.expiries.pop()
		switch r := e.r; {
		case s.requeue(e, now):
		case now >= r.expires:
			s.hold(-(len(r.spans) + len(r.exceptions)))
			s.counts.Orphans += int64(len(r.spans))
			s.release(e.key, r)
		default:
			s.expiries.push(expiry{r.expires, e.key, r})
		}
	}
}

// requeue handles an entry popped from expiries that a request waits for (back a grace later) or that was recorded
// (let go a grace after that, back until then); it reports false, doing nothing, for an entry of descendants no
// request took.
func (s *Store) requeue(e expiry, now int64) bool {
	grace := int64(s.limits.Grace)
	switch r := e.r; {
	case r.pending > 0:
		s.expiries.push(expiry{now + grace, e.key, r})
	case r.done != 0 && now-r.done >= grace:
		s.release(e.key, r)
	case r.done != 0:
		s.expiries.push(expiry{r.done + grace, e.key, r})
	default:
		return false
	}
	return true
}

// recordDue records a request popped from the due queue, with the descendants held for it, and lets go of what
// nothing else waits for (the run ended: no run holds its entry).
func (s *Store) recordDue(d dueRequest, now int64, record func(Request, Split)) {
	k := recordsKey{d.req.TraceID, d.req.ServiceID}
	r := d.pending
	if r == nil { // descendants that came after the request made the entry, if any did
		r = s.records[k]
	}
	// A detached entry's request may have descendants in later runs too, in records.
	var later *records
	if r != nil && !r.inMap {
		if m := s.records[k]; m != nil && m.done == 0 {
			later = m
		}
	}
	var spans []Span
	if r != nil {
		spans = r.spans
	}
	if later != nil {
		s.scratch = append(append(s.scratch[:0], spans...), later.spans...)
		spans = s.scratch
	}
	split := s.compute.Compute(d.req.Span, spans)
	for _, e := range r.heldExceptions() {
		if s.compute.walked(e.span, spans) {
			split.Exceptions = append(split.Exceptions, e.Exception)
		}
	}
	for _, e := range later.heldExceptions() {
		if s.compute.walked(e.span, spans) {
			split.Exceptions = append(split.Exceptions, e.Exception)
		}
	}
	if split.Cycle {
		s.counts.Cycles++
	}
	s.counts.Recorded++
	s.hold(-1)
	record(d.req, split)
	if later != nil && later.pending == 0 {
		s.done(later, now)
	}
	if r == nil {
		return // a request alone keeps nothing (the common single-span trace): a later child is an orphan
	}
	if d.pending != nil {
		r.pending--
	}
	switch {
	case r.pending > 0:
	case r.inMap:
		s.done(r, now)
	default: // detached: nothing else references it
		s.hold(-(len(r.spans) + len(r.exceptions)))
		s.recycle(r)
	}
}

// heldExceptions returns the entry's exceptions (none for nil).
func (r *records) heldExceptions() []heldException {
	if r == nil {
		return nil
	}
	return r.exceptions
}

// done marks an entry of records done with at now: it stays a grace longer to tell late descendants from orphans,
// without its spans' array, which the next entry takes.
func (s *Store) done(r *records, now int64) {
	r.done = now
	s.hold(-(len(r.spans) + len(r.exceptions)))
	s.keepSpans(r)
	r.exceptions = nil
}

// until is when what arrives now has waited a grace.
func (s *Store) until(now time.Time) int64 { return now.UnixNano() + int64(s.limits.Grace) }

// keepSpans takes the entry's spans' array for reuse (not one that held a huge trace), as many as free entries
// are kept.
func (s *Store) keepSpans(r *records) {
	if r.spans != nil && cap(r.spans) <= 64 && s.limits.Free.spans.Load() < int64(s.maxFree()) {
		s.limits.Free.spans.Add(1)
		s.freeSpans = append(s.freeSpans, r.spans[:0])
	}
	r.spans = nil
}

// release lets go of an entry of records (Sweep ended the run: no run holds it).
func (s *Store) release(k recordsKey, r *records) {
	delete(s.records, k)
	s.recycle(r)
}

// recycle keeps an entry nothing references for reuse, as many as free entries are kept.
func (s *Store) recycle(r *records) {
	s.keepSpans(r)
	if s.limits.Free.entries.Load() < int64(s.maxFree()) {
		s.limits.Free.entries.Add(1)
		*r = records{}
		s.free = append(s.free, r)
	}
}

// hash is the key's fingerprint in detachedDue.
func (s *Store) hash(k recordsKey) uint64 {
	hi, lo := bits.Mul64(binary.LittleEndian.Uint64(k.trace[:8])^s.seed^0xa0761d6478bd642f,
		binary.LittleEndian.Uint64(k.trace[8:])^uint64(k.service)^0xe7037ed1a0b428db)
	return hi ^ lo
}

// Drain returns the counts since the last Drain, the run's included (it ends it).
func (s *Store) Drain() Counts {
	s.endRun()
	c := s.counts
	s.counts = Counts{}
	return c
}

// queue is a FIFO on a ring of a power of two elements, which doubles when full: each element is written once and
// moved only when the ring grows. Each element has a sequence number, its rank among all pushed.
type queue[T any] struct {
	items []T
	head  int // index of the front in items
	n     int
	seq   int // sequence number of the front
}

func (q *queue[T]) len() int  { return q.n }
func (q *queue[T]) front() *T { return &q.items[q.head] }

// end is the sequence number the next push gets.
func (q *queue[T]) end() int { return q.seq + q.n }

// at returns the element of sequence number seq, nil when it was popped.
func (q *queue[T]) at(seq int) *T {
	if i := seq - q.seq; i >= 0 && i < q.n {
		return &q.items[(q.head+i)&(len(q.items)-1)]
	}
	return nil
}

func (q *queue[T]) push(v T) {
	if q.n == len(q.items) {
		grown := make([]T, max(64, 2*len(q.items)))
		m := copy(grown, q.items[q.head:])
		copy(grown[m:], q.items[:q.head])
		q.items, q.head = grown, 0
	}
	q.items[(q.head+q.n)&(len(q.items)-1)] = v
	q.n++
}

func (q *queue[T]) pop() T {
	var zero T
	v := q.items[q.head]
	q.items[q.head] = zero // lets go of what it references
	q.head = (q.head + 1) & (len(q.items) - 1)
	q.n--
	q.seq++
	return v
}
