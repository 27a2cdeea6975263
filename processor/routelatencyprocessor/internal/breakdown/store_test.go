package breakdown

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

var (
	t0    = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	trace = pcommon.TraceID{1}
	shop  = Key{"shop", "production", "GET", "/orders/{order_id}"}
)

// The services' numbers in the join.
const (
	shopID uint32 = iota + 1
	inventoryID
)

func newTestStore() *Store {
	return NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 100, MaxSpansPerTrace: 10})
}

type recorded struct {
	req   Request
	split Split
}

func sweep(s *Store, at time.Time) []recorded {
	var out []recorded
	s.Sweep(at, func(r Request, sp Split) {
		sp.Parts, sp.Statements = slices.Clone(sp.Parts), slices.Clone(sp.Statements) // the store reuses them
		out = append(out, recorded{r, sp})
	})
	return out
}

func TestChildInAnEarlierBatchAndOneWithinTheGrace(t *testing.T) {
	s := newTestStore()
	s.AddSpan(trace, shopID, child(2, 1, 10, 30, sqlite), t0) // the batch before the request's
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0.Add(time.Second))
	s.AddSpan(trace, shopID, child(3, 1, 40, 70, payments), t0.Add(3*time.Second))    // a later batch, within the grace
	s.AddSpan(trace, inventoryID, child(4, 3, 45, 65, sqlite), t0.Add(3*time.Second)) // its own request comes later
	assert.Empty(t, sweep(s, t0.Add(5*time.Second)), "recorded before its grace ended")

	got := sweep(s, t0.Add(6*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, shop, got[0].req.Key)
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, payments: 30 * ms, self: 50 * ms}, parts(got[0].split),
		"another service's spans are not the request's")
	assert.Equal(t, Counts{Recorded: 1}, s.Drain())
	assert.Equal(t, 1, s.Held(), "the other service's record waits for its own request")
	s.AddRequest(Request{Key: Key{"inventory", "production", "GET", "/stock"}, ServiceID: inventoryID, TraceID: trace, Span: RequestSpan{ID: 3, Start: 42 * ms, End: 68 * ms}}, t0.Add(4*time.Second))
	got = sweep(s, t0.Add(9*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, self: 6 * ms}, parts(got[0].split))
}

// A child after the grace: the request was recorded without it. When the request had descendants, the child is
// counted late; a request that came alone keeps nothing (the common single-span trace costs no entry), so a child
// of it that comes later is an orphan once its own grace passes.
func TestChildAfterTheGraceIsLateAndTheRequestRecordedWithoutIt(t *testing.T) {
	s := newTestStore()
	s.AddSpan(trace, shopID, child(2, 1, 10, 20, sqlite), t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0)
	got := sweep(s, t0.Add(5*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, map[Part]int64{sqlite: 10 * ms, self: 90 * ms}, parts(got[0].split))
	s.AddSpan(trace, shopID, child(3, 1, 30, 40, sqlite), t0.Add(7*time.Second)) // after the grace
	assert.Equal(t, Counts{Recorded: 1, Late: 1}, s.Drain())
	assert.Zero(t, s.Held())

	alone := pcommon.TraceID{9}
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: alone, Span: request(100 * ms)}, t0.Add(10*time.Second))
	assert.Empty(t, s.records, "a request alone makes no entry")
	got = sweep(s, t0.Add(15*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, map[Part]int64{self: 100 * ms}, parts(got[0].split))
	s.AddSpan(alone, shopID, child(2, 1, 10, 30, sqlite), t0.Add(40*time.Second)) // 30 s late
	sweep(s, t0.Add(45*time.Second))
	assert.Equal(t, Counts{Recorded: 1, Orphans: 1}, s.Drain())
	assert.Zero(t, s.Held())
}

func TestOrphansLeaveAfterTheGraceCounted(t *testing.T) {
	s := newTestStore()
	s.AddSpan(trace, shopID, child(2, 9, 10, 30, sqlite), t0)
	s.AddSpan(trace, shopID, child(3, 9, 40, 50, sqlite), t0)
	sweep(s, t0.Add(4*time.Second))
	assert.Equal(t, 2, s.Held())
	sweep(s, t0.Add(5*time.Second))
	assert.Zero(t, s.Held())
	assert.Equal(t, Counts{Orphans: 2}, s.Drain())
	assert.Empty(t, s.records)
}

// A 100,000-span trace keeps MaxSpansPerTrace records and the store MaxSpans over all traces; the rest is counted.
func TestBoundsDropAndCount(t *testing.T) {
	s := newTestStore()
	for i := range 100_000 {
		s.AddSpan(trace, shopID, child(uint64(i+2), 1, 0, 1, sqlite), t0)
	}
	assert.Equal(t, 10, s.Held())
	for i := range 200 {
		s.AddSpan(pcommon.TraceID{2, byte(i)}, shopID, child(2, 1, 0, 1, sqlite), t0)
	}
	assert.Equal(t, 100, s.Held())
	assert.Equal(t, int64(100_000-10+200-90), s.Drain().Dropped)
}

// A full store tells the caller, which then drops without reading: counted as AddSpan would count it, no entry made.
func TestDropSpanCountsAsAddSpanWould(t *testing.T) {
	s := NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 2, MaxSpansPerTrace: 100})
	s.AddSpan(trace, shopID, child(2, 1, 10, 20, sqlite), t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0)
	require.True(t, s.Full())
	s.DropSpan(pcommon.TraceID{7}, shopID)
	assert.Empty(t, s.records, "a dropped span makes no entry (the request's is its run's)")
	assert.Equal(t, Counts{Dropped: 1}, s.Drain())

	require.Len(t, sweep(s, t0.Add(5*time.Second)), 1)
	require.False(t, s.Full())
	for i := range 2 {
		s.AddSpan(pcommon.TraceID{8, byte(i)}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(5*time.Second))
	}
	require.True(t, s.Full())
	s.DropSpan(trace, shopID) // its request was recorded: late, as AddSpan counts it
	assert.Equal(t, Counts{Recorded: 1, Late: 1}, s.Drain())
}

// The exceptions of a request's descendants come with its split; another service's do not.
func TestExceptionsOfDescendantsComeWithTheSplit(t *testing.T) {
	s := newTestStore()
	s.AddSpan(trace, shopID, child(2, 1, 10, 30, sqlite), t0)
	s.AddExceptions(trace, shopID, 2, []Exception{{Type: "OperationalError", Message: "database is locked"}}, t0)
	s.AddSpan(trace, inventoryID, child(4, 1, 10, 30, sqlite), t0)
	s.AddExceptions(trace, inventoryID, 4, []Exception{{Type: "Other"}}, t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0)
	got := sweep(s, t0.Add(5*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, []Exception{{Type: "OperationalError", Message: "database is locked"}}, got[0].split.Exceptions)
}

// Stores sharded by service share one MaxSpans when they share a counter.
func TestStoresShareTheirBound(t *testing.T) {
	var shared atomic.Int64
	limits := Limits{Grace: 5 * time.Second, MaxSpans: 10, MaxSpansPerTrace: 100, Shared: &shared}
	a, b := NewStore(limits), NewStore(limits)
	for i := range 6 {
		a.AddSpan(pcommon.TraceID{byte(i + 1)}, shopID, child(2, 1, 0, 1, sqlite), t0)
	}
	for i := range 6 {
		b.AddSpan(pcommon.TraceID{byte(i + 1)}, inventoryID, child(2, 1, 0, 1, sqlite), t0)
	}
	assert.Equal(t, 6, a.Held())
	assert.Equal(t, 4, b.Held(), "the other store took 6 of the 10")
	assert.Equal(t, int64(2), b.Drain().Dropped)
	sweep(a, t0.Add(6*time.Second)) // a's orphans leave: b has room again
	assert.Equal(t, int64(4), shared.Load())
}

// Stores that share FreeCounts keep FreeEntries let-go entries (and spans' arrays) over them all: the busy shard
// keeps what its sweeps let go while the others keep none, and the next shard finds the bound taken.
func TestStoresShareTheirFreeEntries(t *testing.T) {
	var free FreeCounts
	limits := Limits{Grace: 5 * time.Second, MaxSpans: 100, MaxSpansPerTrace: 100, FreeEntries: 8, Free: &free}
	a, b := NewStore(limits), NewStore(limits)
	orphans := func(s *Store, service uint32, at time.Time) {
		for i := range 12 {
			s.AddSpan(pcommon.TraceID{byte(i + 1)}, service, child(2, 1, 0, 1, sqlite), at)
			s.AddSpan(pcommon.TraceID{byte(i + 1), 1}, service, child(2, 1, 0, 1, sqlite), at) // a second run: the map
		}
		sweep(s, at.Add(6*time.Second))
	}
	orphans(a, shopID, t0)
	assert.Len(t, a.free, 8, "a keeps up to the whole bound")
	assert.Len(t, a.freeSpans, 8)
	orphans(b, inventoryID, t0)
	assert.Empty(t, b.free, "a holds the bound")
	assert.Equal(t, int64(8), free.entries.Load())

	// a reuses its entries for new traces: the bound has room again, which b's next sweep takes.
	for i := range 3 {
		a.AddSpan(pcommon.TraceID{byte(i + 1), 2}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(7*time.Second))
		a.AddSpan(pcommon.TraceID{byte(i + 1), 3}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(7*time.Second))
	}
	assert.Equal(t, int64(len(a.free)), free.entries.Load())
	orphans(b, inventoryID, t0.Add(7*time.Second))
	assert.Equal(t, 8, len(a.free)+len(b.free))
	assert.Equal(t, int64(8), free.entries.Load())
	assert.Equal(t, int64(len(a.freeSpans)+len(b.freeSpans)), free.spans.Load())
}

// A request that comes before its descendants (a batch listing the server span first) is linked to the entry its
// first descendant makes, detached, so that the sweep finds its records without a lookup; one whose descendant
// comes after another trace's spans is found by the lookup. Both are recorded with every descendant.
func TestRequestBeforeItsDescendants(t *testing.T) {
	s := newTestStore()
	other := pcommon.TraceID{2}
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0)
	s.AddSpan(trace, shopID, child(2, 1, 10, 30, sqlite), t0)
	s.AddSpan(trace, shopID, child(3, 1, 40, 70, payments), t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: other, Span: request(100 * ms)}, t0)
	s.AddSpan(pcommon.TraceID{3}, shopID, child(2, 9, 0, 1, sqlite), t0) // a third trace's span comes between
	s.AddSpan(other, shopID, child(2, 1, 20, 60, sqlite), t0)
	require.Equal(t, 2, s.due.len())
	if linked := s.due.items[s.due.head].pending; assert.NotNil(t, linked, "linked by its descendant") {
		assert.False(t, linked.inMap, "detached")
	}
	assert.Nil(t, s.due.items[s.due.head+1].pending, "found by the sweep's lookup")
	assert.Len(t, s.records, 1, "the entry of the run without a request (other's run is not over)")

	got := sweep(s, t0.Add(5*time.Second))
	require.Len(t, got, 2)
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, payments: 30 * ms, self: 50 * ms}, parts(got[0].split))
	assert.Equal(t, map[Part]int64{sqlite: 40 * ms, self: 60 * ms}, parts(got[1].split))
	s.AddSpan(trace, shopID, child(4, 1, 80, 90, sqlite), t0.Add(6*time.Second))
	sweep(s, t0.Add(20*time.Second))
	assert.Equal(t, Counts{Recorded: 2, Late: 1, Orphans: 1}, s.Drain())
	assert.Zero(t, s.Held())
	assert.Empty(t, s.records)
}

// A queue's sequence numbers hold across the reclaiming of what was popped.
func TestQueueSequenceNumbers(t *testing.T) {
	var q queue[int]
	for i := range 100 {
		require.Equal(t, i, q.end())
		q.push(i)
		if i%3 == 0 {
			q.pop()
		}
	}
	for seq := range 100 {
		if v := q.at(seq); seq < 34 {
			assert.Nil(t, v, "popped: %d", seq)
		} else if assert.NotNil(t, v, "held: %d", seq) {
			assert.Equal(t, seq, *v)
		}
	}
}

// A request whose run took its entry (detached) is recorded with the descendants that came in later runs too, their
// exceptions included, even when a later run's requests took that run's entry; descendants after its recording are
// late. Two requests of one key in one run share the run's entry, each recorded with its own descendants.
func TestDetachedEntryMeetsLaterRunsAndSharedRequests(t *testing.T) {
	s := newTestStore()
	s.AddSpan(trace, shopID, child(2, 1, 10, 30, sqlite), t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: request(100 * ms)}, t0)
	s.AddSpan(pcommon.TraceID{3}, shopID, child(2, 9, 0, 1, sqlite), t0) // another trace's run comes between
	s.AddSpan(trace, shopID, child(3, 1, 40, 70, payments), t0.Add(2*time.Second))
	s.AddExceptions(trace, shopID, 3, []Exception{{Type: "ConnectionError"}}, t0.Add(2*time.Second))
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: RequestSpan{ID: 7, Start: 200 * ms, End: 260 * ms}}, t0.Add(2*time.Second))
	s.AddSpan(trace, shopID, child(8, 7, 210, 250, sqlite), t0.Add(2*time.Second)) // the second request's, in its run
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: trace, Span: RequestSpan{ID: 10, Start: 300 * ms, End: 310 * ms}}, t0.Add(2*time.Second))
	assert.Len(t, s.records, 2, "the third trace's entry, and the later run's: its requests took it while the first waits detached")

	got := sweep(s, t0.Add(5*time.Second))
	require.Len(t, got, 1)
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, payments: 30 * ms, self: 50 * ms}, parts(got[0].split), "with the later run's child")
	assert.Equal(t, []Exception{{Type: "ConnectionError"}}, got[0].split.Exceptions)

	got = sweep(s, t0.Add(7*time.Second))
	require.Len(t, got, 2, "the two requests of one run")
	assert.Equal(t, map[Part]int64{sqlite: 40 * ms, self: 20 * ms}, parts(got[0].split))
	assert.Equal(t, map[Part]int64{self: 10 * ms}, parts(got[1].split))
	s.AddSpan(trace, shopID, child(11, 10, 300, 301, sqlite), t0.Add(8*time.Second)) // after the recording
	s.AddExceptions(trace, shopID, 11, []Exception{{Type: "TimeoutError"}}, t0.Add(8*time.Second))
	sweep(s, t0.Add(20*time.Second))
	assert.Equal(t, Counts{Recorded: 3, Late: 1, Dropped: 1, Orphans: 1}, s.Drain(), "a late span's exception is dropped")
	assert.Zero(t, s.Held())
	assert.Empty(t, s.records)
}

// MakeRoom records the longest-waiting requests early, with the descendants they have by then, until what the next
// batch brings fits under MaxSpans: every request still gets a breakdown. A descendant of a request recorded early
// comes late.
func TestMakeRoomRecordsTheLongestWaitingRequestsEarly(t *testing.T) {
	s := NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 32, MaxSpansPerTrace: 10})
	var got []recorded
	record := func(r Request, sp Split) {
		sp.Parts = slices.Clone(sp.Parts)
		got = append(got, recorded{r, sp})
	}
	traceOf := func(i int) pcommon.TraceID { return pcommon.TraceID{2, byte(i)} }
	// Eight batches of a trace each, a query and its request (descendants first, as an SDK exports them).
	for i := range 8 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		s.MakeRoom(at, 2, record)
		s.AddSpan(traceOf(i), shopID, child(2, 1, 10, 30, sqlite), at)
		s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: traceOf(i), Span: request(100 * ms)}, at)
	}
	assert.Empty(t, got, "16 held: room for more")
	// A batch of 16 descendants whose requests are in another batch still to come.
	s.MakeRoom(t0.Add(20*time.Millisecond), 16, record)
	for i := range 16 {
		s.AddSpan(pcommon.TraceID{3, byte(i)}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(20*time.Millisecond))
	}
	assert.Empty(t, got, "32 held: just fits")

	// A batch of three spans: the two longest-waiting requests are recorded, whole, before their grace ended.
	s.MakeRoom(t0.Add(time.Second), 3, record)
	require.Len(t, got, 2)
	for i, r := range got {
		assert.Equal(t, traceOf(i), r.req.TraceID, "longest waiting first")
		assert.Equal(t, map[Part]int64{sqlite: 20 * ms, self: 80 * ms}, parts(r.split))
	}
	assert.Equal(t, 28, s.Held())
	s.AddSpan(traceOf(0), shopID, child(3, 1, 40, 50, sqlite), t0.Add(2*time.Second))
	assert.Equal(t, Counts{Recorded: 2, Early: 2, Late: 1}, s.Drain(), "after its request was recorded early: late")

	// A batch that needs more than everything: all goes by age, the six requests (recorded early) before the 16
	// descendants that came later and still wait for theirs (let go, counted dropped); what does not fit is dropped.
	got = nil
	s.MakeRoom(t0.Add(3*time.Second), 40, record)
	assert.Len(t, got, 6, "every waiting request recorded")
	assert.Zero(t, s.Held())
	for i := range 40 {
		s.AddSpan(pcommon.TraceID{4, byte(i)}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(3*time.Second))
	}
	assert.Equal(t, Counts{Recorded: 6, Early: 6, Dropped: 16 + 8}, s.Drain())
}

// Descendants whose requests never come (a worker whose spans are not requests) cannot keep the room from the
// requests that follow them: MakeRoom lets the oldest go, whether descendants or requests, so that requests of a
// busy service still get their breakdowns.
func TestMakeRoomLetsDescendantsWithoutRequestsGoByAge(t *testing.T) {
	s := NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 8, MaxSpansPerTrace: 10})
	var got []pcommon.TraceID
	record := func(r Request, _ Split) { got = append(got, r.TraceID) }
	for i := range 8 { // the worker's spans fill the store
		s.AddSpan(pcommon.TraceID{5, byte(i)}, inventoryID, child(2, 1, 0, 1, sqlite), t0.Add(time.Duration(i)*time.Millisecond))
	}
	for i := range 4 { // then the shop's requests, a query and a request a batch
		at := t0.Add(time.Second + time.Duration(i)*time.Millisecond)
		s.MakeRoom(at, 2, record)
		s.AddSpan(pcommon.TraceID{6, byte(i)}, shopID, child(2, 1, 10, 30, sqlite), at)
		s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: pcommon.TraceID{6, byte(i)}, Span: request(100 * ms)}, at)
	}
	assert.Empty(t, got, "the worker's eight spans went first, by age")
	assert.Equal(t, Counts{Dropped: 8}, s.Drain())
	s.MakeRoom(t0.Add(2*time.Second), 2, record)
	assert.Equal(t, []pcommon.TraceID{{6, 0}}, got, "then the oldest request, recorded early")
	got = nil
	assert.Len(t, sweep(s, t0.Add(time.Minute)), 3, "the rest wait their grace")
	assert.Equal(t, Counts{Recorded: 4, Early: 1}, s.Drain())
}

// A request already due when MakeRoom runs is recorded as a sweep would have, not counted early, and makes room.
func TestMakeRoomRecordsWhatIsDueFirst(t *testing.T) {
	s := NewStore(Limits{Grace: 5 * time.Second, MaxSpans: 4, MaxSpansPerTrace: 10})
	var got []pcommon.TraceID
	record := func(r Request, _ Split) { got = append(got, r.TraceID) }
	due, waiting := pcommon.TraceID{6}, pcommon.TraceID{7}
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: due, Span: request(100 * ms)}, t0)
	s.AddRequest(Request{Key: shop, ServiceID: shopID, TraceID: waiting, Span: request(100 * ms)}, t0.Add(4*time.Second))
	s.AddSpan(pcommon.TraceID{8}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(4*time.Second))
	s.AddSpan(pcommon.TraceID{9}, shopID, child(2, 1, 0, 1, sqlite), t0.Add(4*time.Second))
	require.Equal(t, 4, s.Held())
	s.MakeRoom(t0.Add(6*time.Second), 1, record)
	assert.Equal(t, []pcommon.TraceID{due}, got, "room for one: the due request is enough")
	assert.Equal(t, Counts{Recorded: 1}, s.Drain())
}
