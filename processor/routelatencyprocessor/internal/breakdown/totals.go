package breakdown

import (
	"math"
	"slices"
	"sort"

	"github.com/DataDog/sketches-go/ddsketch"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Bounds of what Totals keep, whatever the traffic.
const (
	// MaxParts is how many parts one Totals keeps apart; the next ones of a category fold into {other}.
	MaxParts = 24
	// MaxStatements is how many statements one Totals keeps apart; the rest fold into {other}.
	MaxStatements = 16
	// maxExamples is how many trace ids of N+1 requests are kept.
	maxExamples = 5
	// sketchMaxBins bounds each sketch: at 1 % from 1 us to over 10 minutes (seconds), or 1 to 10^8 calls.
	sketchMaxBins = 1024
)

// Other is the target that parts and statements past the bounds fold into.
const Other = "{other}"

// Totals is what a set of requests' breakdowns add up to: a route's slice, or a window merged from slices. Counts
// are exact; each sketch reads quantiles within 1 %.
type Totals struct {
	Requests uint64
	Nanos    int64 // the requests' total time
	Parts    map[Part]*PartTotals
	// Statements are the database statements, by normalized text.
	Statements map[string]*PartTotals
	NPlusOne   NPlusOneTotals
	// Async counts the descendants that ran on after their request ended (clipped to it).
	Async uint64
	// first are the first parts made, searched before Parts: a route's requests touch a few, and comparing them is
	// cheaper than hashing.
	first []partRef
}

type partRef struct {
	part   Part
	totals *PartTotals
}

// firstParts is how many parts Totals.first holds.
const firstParts = 8

// PartTotals is one part (or statement) over the requests that touched it.
type PartTotals struct {
	Requests uint64 // requests that touched it
	Calls    uint64
	Nanos    int64
	// Time is each touching request's time in it (seconds); CallsPerRequest its calls.
	Time            *ddsketch.DDSketch
	CallsPerRequest CallCounts
}

// CallCounts counts requests by their number of calls, exactly: calls per request are small integers, which a
// sketch would spend a logarithm and a store on.
type CallCounts struct {
	small [64]uint64     // requests with 0 to 63 calls
	large map[int]uint64 // the others, by their count (at most MaxSpansPerTrace distinct keys)
	total uint64
}

func (c *CallCounts) add(calls int, requests uint64) {
	c.total += requests
	if calls < len(c.small) {
		c.small[calls] += requests
		return
	}
	if c.large == nil {
		c.large = map[int]uint64{}
	}
	c.large[calls] += requests
}

func (c *CallCounts) merge(o *CallCounts) {
	for i, n := range o.small {
		c.small[i] += n
	}
	if len(o.large) > 0 && c.large == nil {
		c.large = map[int]uint64{}
	}
	for calls, n := range o.large {
		c.large[calls] += n
	}
	c.total += o.total
}

// Quantile returns the smallest number of calls that at least q of the requests did not exceed (0 for none).
func (c *CallCounts) Quantile(q float64) float64 {
	if c.total == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(c.total))), 1)
	seen := uint64(0)
	for calls, n := range c.small {
		if seen += n; seen >= rank {
			return float64(calls)
		}
	}
	large := make([]int, 0, len(c.large))
	for calls := range c.large {
		large = append(large, calls)
	}
	slices.Sort(large)
	for _, calls := range large {
		if seen += c.large[calls]; seen >= rank {
			return float64(calls)
		}
	}
	return float64(large[len(large)-1])
}

// TimeBins visits the distribution of Time: each bin's value (seconds, within the sketch's accuracy) and its
// requests.
func (pt *PartTotals) TimeBins(visit func(seconds float64, requests uint64)) {
	pt.Time.ForEach(func(seconds, n float64) bool {
		visit(seconds, uint64(math.Round(n))) // sums of whole request counts: exact in a float64
		return false
	})
}

// NPlusOneTotals counts the requests that ran one statement at least the threshold's times.
type NPlusOneTotals struct {
	Flagged uint64
	// Statements counts flagged requests per statement (bounded as Totals.Statements is).
	Statements map[string]uint64
	Repeats    CallCounts // repeats of the flagged requests, exactly
	MaxRepeats int
	Examples   []string // trace ids (hex)
}

// NewTotals returns empty totals.
func NewTotals() *Totals {
	return &Totals{Parts: map[Part]*PartTotals{}, Statements: map[string]*PartTotals{},
		NPlusOne: NPlusOneTotals{Statements: map[string]uint64{}}}
}

func newSketch() *ddsketch.DDSketch {
	s, _ := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, sketchMaxBins) // constant arguments: cannot fail
	return s
}

func newPartTotals() *PartTotals {
	return &PartTotals{Time: newSketch()}
}

// Add counts one request's split as count requests (a sampled span stands for several); threshold is the N+1
// threshold (0: off).
func (t *Totals) Add(split Split, request RequestSpan, count uint64, traceID pcommon.TraceID, threshold int) {
	w := float64(count)
	t.Requests += count
	t.Async += uint64(split.Async) * count
	t.Nanos += (request.End - request.Start) * int64(count)
	for _, p := range split.Parts {
		if p.Nanos == 0 && p.Part.Category != Self {
			continue // its calls ran outside the request, or under descendants of their own: no time of its own
		}
		pt := t.part(p.Part)
		pt.Requests += count
		pt.Calls += uint64(p.Calls) * count
		pt.Nanos += p.Nanos * int64(count)
		_ = pt.Time.AddWithCount(float64(p.Nanos)/1e9, w) // never negative: cannot fail
		if p.Part.Category != Self {
			pt.CallsPerRequest.add(p.Calls, count)
		}
	}
	for _, st := range split.Statements {
		pt := t.statement(st.Statement)
		pt.Requests += count
		pt.Calls += uint64(st.Calls) * count
		pt.Nanos += st.Nanos * int64(count)
		_ = pt.Time.AddWithCount(float64(st.Nanos)/1e9, w)
		pt.CallsPerRequest.add(st.Calls, count)
	}
	if st, n, flagged := NPlusOne(split, threshold); flagged {
		np := &t.NPlusOne
		np.Flagged += count
		np.Statements[t.statementKey(st)] += count
		np.Repeats.add(n, count)
		np.MaxRepeats = max(np.MaxRepeats, n)
		if len(np.Examples) < maxExamples {
			np.Examples = append(np.Examples, traceID.String())
		}
	}
}

func (t *Totals) part(p Part) *PartTotals {
	for i := range t.first {
		if t.first[i].part == p {
			return t.first[i].totals
		}
	}
	if pt, ok := t.Parts[p]; ok {
		return pt
	}
	if len(t.Parts) >= MaxParts && p.Category != Self {
		p.Target = Other
		if pt, ok := t.Parts[p]; ok {
			return pt
		}
	}
	pt := newPartTotals()
	t.Parts[p] = pt
	if len(t.first) < firstParts {
		t.first = append(t.first, partRef{p, pt})
	}
	return pt
}

func (t *Totals) statementKey(st string) string {
	if _, ok := t.Statements[st]; ok || len(t.Statements) < MaxStatements {
		return st
	}
	return Other
}

func (t *Totals) statement(st string) *PartTotals {
	st = t.statementKey(st)
	pt, ok := t.Statements[st]
	if !ok {
		pt = newPartTotals()
		t.Statements[st] = pt
	}
	return pt
}

// Merge adds o into t (o is not changed).
func (t *Totals) Merge(o *Totals) {
	t.Requests += o.Requests
	t.Nanos += o.Nanos
	t.Async += o.Async
	for p, pt := range o.Parts {
		t.part(p).merge(pt)
	}
	for st, pt := range o.Statements {
		t.statement(st).merge(pt)
	}
	np := &t.NPlusOne
	np.Flagged += o.NPlusOne.Flagged
	for st, n := range o.NPlusOne.Statements {
		np.Statements[t.statementKey(st)] += n
	}
	np.Repeats.merge(&o.NPlusOne.Repeats)
	np.MaxRepeats = max(np.MaxRepeats, o.NPlusOne.MaxRepeats)
	for _, e := range o.NPlusOne.Examples {
		if len(np.Examples) < maxExamples {
			np.Examples = append(np.Examples, e)
		}
	}
}

func (pt *PartTotals) merge(o *PartTotals) {
	pt.Requests += o.Requests
	pt.Calls += o.Calls
	pt.Nanos += o.Nanos
	_ = pt.Time.MergeWith(o.Time)
	pt.CallsPerRequest.merge(&o.CallsPerRequest)
}

// Row is one part or statement of Totals as the page shows it.
type Row struct {
	Category, Target string
	// RequestShare is the share of the requests that touched it; TimeShare its share of the requests' time.
	RequestShare, TimeShare float64
	Calls                   uint64
	CallsMean, CallsP95     float64 // per touching request
	P50, P95, P99           float64 // seconds, per touching request
}

// PartRows are the parts heaviest first (by time).
func (t *Totals) PartRows() []Row {
	rows := make([]Row, 0, len(t.Parts))
	for p, pt := range t.Parts {
		rows = append(rows, t.row(p.Category.String(), p.Target, pt))
	}
	return byTime(rows)
}

// StatementRows are the statements heaviest first (by time).
func (t *Totals) StatementRows() []Row {
	rows := make([]Row, 0, len(t.Statements))
	for st, pt := range t.Statements {
		rows = append(rows, t.row(DB.String(), st, pt))
	}
	return byTime(rows)
}

func (t *Totals) row(category, target string, pt *PartTotals) Row {
	r := Row{Category: category, Target: target, Calls: pt.Calls}
	if t.Requests > 0 {
		r.RequestShare = float64(pt.Requests) / float64(t.Requests)
	}
	if t.Nanos > 0 {
		r.TimeShare = float64(pt.Nanos) / float64(t.Nanos)
	}
	if pt.Requests > 0 {
		r.CallsMean = float64(pt.Calls) / float64(pt.Requests)
	}
	if q, err := pt.Time.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99}); err == nil {
		r.P50, r.P95, r.P99 = q[0], q[1], q[2]
	}
	r.CallsP95 = pt.CallsPerRequest.Quantile(0.95)
	return r
}

func byTime(rows []Row) []Row {
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].TimeShare != rows[j].TimeShare {
			return rows[i].TimeShare > rows[j].TimeShare
		}
		return rows[i].Category+rows[i].Target < rows[j].Category+rows[j].Target
	})
	return rows
}

// CategoryNanos is the time of each category (self included), for the stacked chart.
func (t *Totals) CategoryNanos() map[string]int64 {
	out := map[string]int64{}
	for p, pt := range t.Parts {
		out[p.Category.String()] += pt.Nanos
	}
	return out
}
