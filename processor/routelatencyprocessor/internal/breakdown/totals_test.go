package breakdown

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Two requests of 100 ms: the first with two 20 ms queries and 50 ms downstream, the second with its own time only.
func TestTotalsCountExactlyAndShareByTime(t *testing.T) {
	q1, q2 := child(2, 1, 10, 30, sqlite), child(3, 1, 30, 50, sqlite)
	q1.Statement, q2.Statement = "SELECT ?", "SELECT ?"
	first := Compute(request(100*ms), []Span{q1, q2, child(4, 1, 50, 100, payments)})
	second := Compute(request(100*ms), nil)

	tot := NewTotals()
	tot.Add(first, request(100*ms), 1, pcommon.TraceID{1}, 2)
	tot.Add(second, request(100*ms), 1, pcommon.TraceID{2}, 2)
	assert.Equal(t, uint64(2), tot.Requests)
	assert.Equal(t, uint64(0), tot.Async)
	rows := tot.PartRows()
	require.Len(t, rows, 3)
	assert.Equal(t, Row{Category: "self", Target: "", RequestShare: 1, TimeShare: 0.55, P50: rows[0].P50, P95: rows[0].P95, P99: rows[0].P99}, rows[0])
	assert.Equal(t, "http", rows[1].Category)
	assert.InDelta(t, 0.25, rows[1].TimeShare, 1e-12)
	assert.Equal(t, "db", rows[2].Category)
	assert.InDelta(t, 0.5, rows[2].RequestShare, 1e-12)
	assert.InDelta(t, 0.2, rows[2].TimeShare, 1e-12)
	assert.Equal(t, 2.0, rows[2].CallsMean)
	assert.InEpsilon(t, 0.040, rows[2].P50, 0.01)
	assert.Equal(t, map[string]int64{"self": 110 * ms, "db": 40 * ms, "http": 50 * ms}, tot.CategoryNanos())

	assert.Equal(t, uint64(1), tot.NPlusOne.Flagged, "two runs of one statement at a threshold of 2")
	assert.Equal(t, map[string]uint64{"SELECT ?": 1}, tot.NPlusOne.Statements)
	assert.Equal(t, []string{pcommon.TraceID{1}.String()}, tot.NPlusOne.Examples)

	// Merging two halves gives what adding both gives.
	a, b := NewTotals(), NewTotals()
	a.Add(first, request(100*ms), 1, pcommon.TraceID{1}, 2)
	b.Add(second, request(100*ms), 1, pcommon.TraceID{2}, 2)
	a.Merge(b)
	assert.Equal(t, tot.PartRows(), a.PartRows())
	assert.Equal(t, tot.StatementRows(), a.StatementRows())
}

// Past MaxParts, a category's new targets fold into {other}: one route cannot hold unbounded parts.
func TestTotalsBoundTheirParts(t *testing.T) {
	tot := NewTotals()
	for i := range 100 {
		s := child(2, 1, 0, 10, Part{Internal, string(rune('a'+i%26)) + string(rune('a'+i/26))})
		tot.Add(Compute(request(10*ms), []Span{s}), request(10*ms), 1, pcommon.TraceID{}, 0)
	}
	assert.LessOrEqual(t, len(tot.Parts), MaxParts+1)
	other := tot.Parts[Part{Internal, Other}]
	require.NotNil(t, other)
	sum := uint64(0)
	for _, pt := range tot.Parts {
		sum += pt.Calls
	}
	assert.Equal(t, uint64(100), sum, "no call lost to the bound")
}

func TestTotalsCountAsyncDescendantsWeighted(t *testing.T) {
	tot := NewTotals()
	tot.Add(Compute(request(100*ms), []Span{child(2, 1, 80, 150, payments)}), request(100*ms), 4, pcommon.TraceID{}, 0)
	assert.Equal(t, uint64(4), tot.Async, "one async call in a span standing for 4 requests")
	assert.Equal(t, uint64(4), tot.Requests)
}

// Calls per request are counted exactly, past the small counts too, and merge as they add.
func TestCallCountsQuantilesAreExact(t *testing.T) {
	var a, b CallCounts
	a.add(1, 18)
	a.add(1000, 1)
	b.add(3, 1)
	b.add(2000, 1)
	assert.Equal(t, 1.0, a.Quantile(0.5))
	a.merge(&b)
	assert.Equal(t, uint64(21), a.total)
	assert.Equal(t, 1.0, a.Quantile(0.5))
	assert.Equal(t, 3.0, a.Quantile(0.9), "19th of 21")
	assert.Equal(t, 1000.0, a.Quantile(0.95), "20th of 21")
	assert.Equal(t, 2000.0, a.Quantile(1))
	assert.Zero(t, (&CallCounts{}).Quantile(0.95))
}
