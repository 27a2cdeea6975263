package breakdown

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

const ms = int64(1e6)

var (
	sqlite   = Part{DB, "sqlite main"}
	payments = Part{HTTP, "payments:8080"}
	report   = Part{Internal, "build_report"}
	self     = Part{Category: Self}
)

// parts is a split's time per part, leaving out parts without time but self.
func parts(s Split) map[Part]int64 {
	m := map[Part]int64{}
	for _, p := range s.Parts {
		if p.Nanos > 0 || p.Part.Category == Self {
			m[p.Part] = p.Nanos
		}
	}
	return m
}

func request(end int64) RequestSpan { return RequestSpan{ID: 1, Start: 0, End: end} }

func child(id, parent uint64, start, end int64, part Part) Span {
	return Span{ID: id, Parent: parent, Start: start * ms, End: end * ms, Part: part}
}

func TestSequentialChildrenTakeTheirOwnTime(t *testing.T) {
	got := Compute(request(100*ms), []Span{child(2, 1, 10, 30, sqlite), child(3, 1, 40, 70, payments)})
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, payments: 30 * ms, self: 50 * ms}, parts(got))
	assert.Equal(t, 1, got.Part(sqlite).Calls)
	assert.Equal(t, 1, got.Part(payments).Calls)
}

// Two queries running at once share the instants they overlap: 10-30 the first alone, 30-50 both (10 each),
// 50-70 the second alone.
func TestParallelQueriesShareTheInstant(t *testing.T) {
	got := Compute(request(100*ms), []Span{child(2, 1, 10, 50, sqlite), child(3, 1, 30, 70, sqlite)})
	assert.Equal(t, map[Part]int64{sqlite: 60 * ms, self: 40 * ms}, parts(got))
	assert.Equal(t, 2, got.Part(sqlite).Calls)
}

// A custom span wrapping two queries gets its own time, not theirs.
func TestInternalSpanWrappingQueriesKeepsOnlyItsOwnTime(t *testing.T) {
	got := Compute(request(100*ms), []Span{
		child(2, 1, 10, 90, report), child(3, 2, 20, 40, sqlite), child(4, 2, 50, 60, sqlite),
	})
	assert.Equal(t, map[Part]int64{sqlite: 30 * ms, report: 50 * ms, self: 20 * ms}, parts(got))
}

func TestAsyncChildIsClippedToItsRequestAndCounted(t *testing.T) {
	got := Compute(request(100*ms), []Span{child(2, 1, 80, 150, payments)})
	assert.Equal(t, map[Part]int64{payments: 20 * ms, self: 80 * ms}, parts(got))
	assert.Equal(t, 1, got.Async)
}

// Clock skew between hosts: a child that starts before its request counts from the request's start only.
func TestChildStartingBeforeItsRequestIsClipped(t *testing.T) {
	got := Compute(request(100*ms), []Span{child(2, 1, -10, 20, sqlite)})
	assert.Equal(t, map[Part]int64{sqlite: 20 * ms, self: 80 * ms}, parts(got))
}

// A descendant that outlives its own parent (but not the request) still takes the instants it runs alone.
func TestGrandchildOutlivingItsParent(t *testing.T) {
	got := Compute(request(100*ms), []Span{child(2, 1, 10, 30, report), child(3, 2, 20, 60, sqlite)})
	assert.Equal(t, map[Part]int64{report: 10 * ms, sqlite: 40 * ms, self: 50 * ms}, parts(got))
}

// Parent links that loop, a span that is its own parent and a repeated span id never hang the walk; what is not
// reachable from the request is left out, and a repeated id is flagged.
func TestCyclesSelfParentsAndDuplicatesAreLeftOut(t *testing.T) {
	got := Compute(request(100*ms), []Span{
		child(2, 3, 0, 50, sqlite), child(3, 2, 0, 50, sqlite), // a cycle beside the request
		child(4, 4, 0, 50, sqlite),                                   // its own parent
		child(5, 1, 10, 20, payments), child(5, 1, 30, 40, payments), // a duplicate id
	})
	assert.Equal(t, map[Part]int64{payments: 10 * ms, self: 90 * ms}, parts(got))
	assert.True(t, got.Cycle)
}

// Three spans running at once over 10 ns: 3 each, the nanosecond left to the request, so the sum stays exact.
func TestPartsAlwaysAddUpToTheRequest(t *testing.T) {
	spans := []Span{{ID: 2, Parent: 1, Start: 0, End: 10, Part: sqlite}, {ID: 3, Parent: 1, Start: 0, End: 10, Part: payments}, {ID: 4, Parent: 1, Start: 0, End: 10, Part: report}}
	got := Compute(RequestSpan{ID: 1, Start: 0, End: 10}, spans)
	sum := int64(0)
	for _, p := range got.Parts {
		sum += p.Nanos
	}
	assert.Equal(t, int64(10), sum)
	assert.Equal(t, int64(3), got.Part(sqlite).Nanos)
}

func TestNPlusOneAtAndBelowTheThreshold(t *testing.T) {
	var spans []Span
	for i := range 5 {
		s := child(uint64(10+i), 1, int64(10*i), int64(10*i+5), sqlite)
		s.Statement = "SELECT * FROM items WHERE order_id = ?"
		spans = append(spans, s)
	}
	other := child(20, 1, 60, 70, sqlite)
	other.Statement = "SELECT * FROM orders WHERE id = ?"
	spans = append(spans, other)

	st, n, flagged := NPlusOne(Compute(request(100*ms), spans), 5)
	assert.Equal(t, "SELECT * FROM items WHERE order_id = ?", st)
	assert.Equal(t, 5, n)
	assert.True(t, flagged, "5 repeats at a threshold of 5")
	_, n, flagged = NPlusOne(Compute(request(100*ms), spans[1:]), 5)
	assert.Equal(t, 4, n)
	assert.False(t, flagged, "4 repeats, one below the threshold")
}

// A request without descendants, or whose spans are none of its own, is all its own time.
func TestRequestWithoutDescendantsIsAllItsOwnTime(t *testing.T) {
	for _, spans := range [][]Span{nil, {child(2, 9, 10, 30, sqlite)}} {
		got := Compute(request(100*ms), spans)
		assert.Equal(t, []PartTime{{Part: self, Nanos: 100 * ms}}, got.Parts)
		assert.Empty(t, got.Statements)
		assert.Zero(t, got.Async)
	}
}
