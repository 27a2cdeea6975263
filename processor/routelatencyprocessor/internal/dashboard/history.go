// Package dashboard keeps a bounded in-memory history of per-route latency sketches and serves it as a read-only
// web page and a JSON API. It knows nothing of spans: the connector hands it each flushed interval.
package dashboard // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

const (
	// sliceMaxBins bounds one slice's sketch: at 1% accuracy 1024 bins span latencies from 1 us to over 10 minutes.
	sliceMaxBins = 1024
	// slowestPerSlice is how many of its slowest requests a route's slice keeps, for links to their traces.
	slowestPerSlice = 5
)

// RouteKey identifies a route on the dashboard; status codes of a route are merged.
type RouteKey struct {
	Service, Environment, Method, Route string
}

// Exemplar is one request kept for its trace: among the slowest of its slice.
type Exemplar struct {
	TraceID, SpanID string
	Seconds         float64
	At              time.Time
}

// Interval is one flushed interval of one series (a route and a status code), as the connector hands it over.
type Interval struct {
	Sketch     *ddsketch.DDSketch // latencies in seconds; its count is the interval's requests
	Errors     uint64
	SumSeconds float64
	StatusCode int64
	Exemplars  []Exemplar
}

// StatusClasses counts requests by status class: index 1 to 5 for 1xx to 5xx, 0 for none or another code.
type StatusClasses [6]uint64

func classOf(code int64) int {
	if code >= 100 && code < 600 {
		return int(code / 100)
	}
	return 0
}

// Tier is one resolution of the history: slices Slice wide, kept for Keep.
type Tier struct {
	Slice, Keep time.Duration
}

// History holds, per route, one ring of time slices per tier, each slice with request and error counts, status
// classes, the total time, a merged sketch and the slowest requests. Every interval goes into the current slice of
// every tier (a coarse slice is the merge of the fine ones it spans: sketches merge exactly, counts add), and a
// window is answered from the finest tier that holds it. Memory is bounded by MaxRoutes x (the tiers' slices) x
// (one sketch of at most 1024 bins of 8 bytes + 5 exemplars).
type History struct {
	tiers     []tier
	maxRoutes int

	mu     sync.Mutex
	routes map[RouteKey]*routeHistory
	// dropped counts intervals of routes beyond maxRoutes, which the dashboard does not show.
	dropped uint64
	// since is the start of the first slice recorded: rates are over the time the history covers, not over a window
	// longer than the gateway has run.
	since time.Time
	// updated is when the last interval was recorded: how fresh the page is.
	updated time.Time
	// For persistence (Changes): each route's number, whether the set of routes changed, the routes that left.
	nextID     uint64
	indexDirty bool
	removed    []uint64
}

type tier struct {
	slice  time.Duration
	slices int
}

func (t tier) span() time.Duration { return time.Duration(t.slices) * t.slice }

type routeHistory struct {
	id    uint64         // names its persisted records
	rings [][]*timeSlice // per tier; index: slice number modulo the ring's length
}

type timeSlice struct {
	start            time.Time
	requests, errors uint64
	sumSeconds       float64
	classes          StatusClasses
	sketch           *ddsketch.DDSketch
	slowest          []Exemplar // slowest first
	// breakdown adds up the breakdowns of the requests recorded in this slice (a grace after they arrived); nil
	// for none.
	breakdown *breakdown.Totals
	// slo counts the slice's requests per objective (by name) the route is counted against; nil for none.
	slo map[string]slo.Outcome
	// dirty is set when the slice changed since it was last persisted.
	dirty bool
}

// NewHistory keeps, for at most maxRoutes routes, each tier's Keep/Slice slices. Tiers go from the finest to the
// coarsest, each slice a whole number of the previous tier's (so that windows line up).
func NewHistory(tiers []Tier, maxRoutes int) *History {
	h := &History{maxRoutes: maxRoutes, routes: map[RouteKey]*routeHistory{}}
	for _, t := range tiers {
		h.tiers = append(h.tiers, tier{slice: t.Slice, slices: int(t.Keep / t.Slice)})
	}
	return h
}

// Span is how far back the coarsest tier goes: the longest window the history answers.
func (h *History) Span() time.Duration { return h.tiers[len(h.tiers)-1].span() }

// tierFor is the finest tier that holds the window (the coarsest when none does).
func (h *History) tierFor(window time.Duration) int {
	for i, t := range h.tiers {
		if t.span() >= window {
			return i
		}
	}
	return len(h.tiers) - 1
}

// SliceFor is the width of the slices a window is answered with.
func (h *History) SliceFor(window time.Duration) time.Duration {
	return h.tiers[h.tierFor(window)].slice
}

// Record adds one flushed interval of a route's series at the given time. The sketch is merged, not kept.
func (h *History) Record(key RouteKey, iv Interval, at time.Time) {
	if iv.Sketch.IsEmpty() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.updated = at
	n := uint64(iv.Sketch.GetCount())
	for _, ts := range h.slicesAt(key, at) {
		ts.requests += n
		ts.errors += iv.Errors
		ts.sumSeconds += iv.SumSeconds
		ts.classes[classOf(iv.StatusCode)] += n
		_ = ts.sketch.MergeWith(iv.Sketch) // same index mapping (1% logarithmic): cannot fail
		ts.slowest = keepSlowest(ts.slowest, iv.Exemplars, slowestPerSlice)
		ts.dirty = true
	}
}

// RecordBreakdown adds the breakdowns of a route's requests recorded at the given time (merged, not kept), into
// the finest tier only: a breakdown holds a sketch per part, too much to keep a week of.
func (h *History) RecordBreakdown(key RouteKey, t *breakdown.Totals, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if slices := h.slicesAt(key, at); len(slices) > 0 {
		ts := slices[0]
		if ts.breakdown == nil {
			ts.breakdown = breakdown.NewTotals()
		}
		ts.breakdown.Merge(t)
	}
}

// RecordSLO adds a route's good and bad requests under one objective, flushed at the given time.
func (h *History) RecordSLO(key RouteKey, objective string, out slo.Outcome, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ts := range h.slicesAt(key, at) {
		if ts.slo == nil {
			ts.slo = map[string]slo.Outcome{}
		}
		o := ts.slo[objective]
		o.Good += out.Good
		o.Bad += out.Bad
		ts.slo[objective] = o
		ts.dirty = true
	}
}

// sloKey is one route under one objective.
type sloKey struct {
	RouteKey
	objective string
}

// sloOutcomes adds up, per route and objective, the counts of the slices in the window ending at end.
func (h *History) sloOutcomes(window time.Duration, end time.Time) map[sloKey]slo.Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[sloKey]slo.Outcome{}
	t := h.tierFor(window)
	for key, rh := range h.routes {
		for _, ts := range rh.rings[t] {
			if !h.inWindow(ts, t, window, end) {
				continue
			}
			for name, o := range ts.slo {
				k := sloKey{key, name}
				sum := out[k]
				sum.Good += o.Good
				sum.Bad += o.Bad
				out[k] = sum
			}
		}
	}
	return out
}

// slicesAt returns the route's slice of each tier that holds the given time, making room for them; none when the
// route is one too many (counted in dropped). The caller holds mu.
func (h *History) slicesAt(key RouteKey, at time.Time) []*timeSlice {
	rh, ok := h.routes[key]
	if !ok {
		if len(h.routes) >= h.maxRoutes {
			h.forgetExpired(at)
		}
		if len(h.routes) >= h.maxRoutes {
			h.dropped++
			return nil
		}
		rh = h.newRoute(key, h.nextID)
	}
	if start := at.Truncate(h.tiers[0].slice); h.since.IsZero() || start.Before(h.since) {
		h.since = start
	}
	out := make([]*timeSlice, len(h.tiers))
	for i, t := range h.tiers {
		out[i] = rh.slice(i, t, at.Truncate(t.slice))
	}
	return out
}

// newRoute adds a route with empty rings under the number id (the caller holds mu and checked the cap). Numbers are
// never reused: the next new route takes one past the highest so far.
func (h *History) newRoute(key RouteKey, id uint64) *routeHistory {
	rh := &routeHistory{id: id, rings: make([][]*timeSlice, len(h.tiers))}
	h.nextID = max(h.nextID, id+1)
	for i, t := range h.tiers {
		rh.rings[i] = make([]*timeSlice, t.slices)
	}
	h.routes[key] = rh
	h.indexDirty = true
	return rh
}

// slice returns the ring's slice that starts at start, a fresh one in place of an older one.
func (rh *routeHistory) slice(i int, t tier, start time.Time) *timeSlice {
	n := int(start.UnixNano()/int64(t.slice)) % t.slices
	ts := rh.rings[i][n]
	if ts == nil || !ts.start.Equal(start) {
		ts = &timeSlice{start: start, sketch: newSliceSketch()}
		rh.rings[i][n] = ts
	}
	return ts
}

// forgetExpired drops the routes with no slice left in the history: a route that stopped a week ago makes room
// for a new one.
func (h *History) forgetExpired(now time.Time) {
	last := len(h.tiers) - 1
	oldest := now.Add(-h.tiers[last].span())
	for key, rh := range h.routes {
		expired := true
		for _, ts := range rh.rings[last] {
			if ts != nil && ts.start.After(oldest) {
				expired = false
				break
			}
		}
		if expired {
			delete(h.routes, key)
			h.removed = append(h.removed, rh.id)
			h.indexDirty = true
		}
	}
}

// keepSlowest merges more into kept and keeps the n slowest, slowest first.
func keepSlowest(kept, more []Exemplar, n int) []Exemplar {
	kept = append(kept, more...)
	sort.SliceStable(kept, func(i, j int) bool { return kept[i].Seconds > kept[j].Seconds })
	return slices.Clip(kept[:min(len(kept), n)])
}

// RouteWindow is one route merged over a window: what the table shows and what a replica hands its peers.
type RouteWindow struct {
	RouteKey
	Requests, Errors uint64
	SumSeconds       float64
	Sketch           *ddsketch.DDSketch // seconds
}

// covered is how much of the window ending at end the history holds (at least one slice), 0 when none.
func (h *History) covered(window time.Duration, end time.Time) time.Duration {
	if h.since.IsZero() || !end.After(h.since) {
		return 0
	}
	return max(min(window, end.Sub(h.since)), h.SliceFor(window))
}

// inWindow reports a slice of tier t starting in the window that ends at end.
func (h *History) inWindow(ts *timeSlice, t int, window time.Duration, end time.Time) bool {
	return ts != nil && !ts.start.Before(end.Add(-window).Truncate(h.tiers[t].slice)) && ts.start.Before(end)
}

// Windows returns every route with traffic in the window ending at end, each merged over the window's slices, and
// how much of the window the history covers (rates are over that).
func (h *History) Windows(window time.Duration, end time.Time) (routes []RouteWindow, covered time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.tierFor(window)
	for key, rh := range h.routes {
		rw := RouteWindow{RouteKey: key, Sketch: newSliceSketch()}
		for _, ts := range rh.rings[t] {
			if !h.inWindow(ts, t, window, end) {
				continue
			}
			rw.Requests += ts.requests
			rw.Errors += ts.errors
			rw.SumSeconds += ts.sumSeconds
			_ = rw.Sketch.MergeWith(ts.sketch)
		}
		if rw.Requests > 0 {
			routes = append(routes, rw)
		}
	}
	return routes, h.covered(window, end)
}

// Point is one slice of a route, or of several routes merged.
type Point struct {
	Start            time.Time
	Requests, Errors uint64
	SumSeconds       float64
	Classes          StatusClasses
	P50, P95, P99    float64 // seconds
	// BreakdownRequests are the requests whose breakdown was recorded in the slice; BreakdownNanos their time by
	// category.
	BreakdownRequests uint64
	BreakdownNanos    map[string]int64
	// Latency counts the slice's requests per latency bucket (BucketOf), for the heatmap.
	Latency map[int]float64
}

// BucketOf is a latency's bucket on a log scale, ten per decade: bucket k holds [10^(k/10), 10^((k+1)/10)) seconds.
// Zero latencies go with a nanosecond.
func BucketOf(seconds float64) int { return int(math.Floor(10 * math.Log10(max(seconds, 1e-9)))) }

// Detail is what matching routes did over a window: per slice, merged; the window's merged sketch; its slowest
// requests.
type Detail struct {
	Points  []Point // oldest first; slices without traffic are left out
	Window  RouteWindow
	Slowest []Exemplar // slowest first, at most slowestPerDetail
	Covered time.Duration
	// Breakdown is the window's breakdowns merged (empty totals when none was recorded).
	Breakdown *breakdown.Totals
}

const slowestPerDetail = 10

// Query merges the routes that match over the window ending at now, slice by slice.
func (h *History) Query(match func(RouteKey) bool, window time.Duration, now time.Time) Detail {
	h.mu.Lock()
	defer h.mu.Unlock()
	var routes []*routeHistory
	for key, rh := range h.routes {
		if match(key) {
			routes = append(routes, rh)
		}
	}
	return h.query(routes, window, now)
}

// QueryRoute is Query of one route, found by its key rather than by a scan of every route.
func (h *History) QueryRoute(key RouteKey, window time.Duration, now time.Time) Detail {
	h.mu.Lock()
	defer h.mu.Unlock()
	var routes []*routeHistory
	if rh, ok := h.routes[key]; ok {
		routes = append(routes, rh)
	}
	return h.query(routes, window, now)
}

func (h *History) query(routes []*routeHistory, window time.Duration, now time.Time) Detail {
	type merged struct {
		p Point
		// sketch is the slice's own while one route has the slice, a merged copy once a second one does: the
		// history's sketches are never written here.
		sketch *ddsketch.DDSketch
		copied bool
	}
	bySlice := map[time.Time]*merged{}
	d := Detail{Window: RouteWindow{Sketch: newSliceSketch()}, Covered: h.covered(window, now), Breakdown: breakdown.NewTotals()}
	t := h.tierFor(window)
	for _, rh := range routes {
		for _, ts := range rh.rings[t] {
			if !h.inWindow(ts, t, window, now) {
				continue
			}
			m := bySlice[ts.start]
			switch {
			case m == nil:
				m = &merged{p: Point{Start: ts.start}, sketch: ts.sketch}
				bySlice[ts.start] = m
			case !m.copied:
				own := newSliceSketch()
				_ = own.MergeWith(m.sketch) // same index mapping (1% logarithmic): cannot fail
				m.sketch, m.copied = own, true
				fallthrough
			default:
				_ = m.sketch.MergeWith(ts.sketch)
			}
			m.p.Requests += ts.requests
			m.p.Errors += ts.errors
			m.p.SumSeconds += ts.sumSeconds
			for c, n := range ts.classes {
				m.p.Classes[c] += n
			}
			_ = d.Window.Sketch.MergeWith(ts.sketch)
			d.Slowest = keepSlowest(d.Slowest, ts.slowest, slowestPerDetail)
			if ts.breakdown != nil {
				d.Breakdown.Merge(ts.breakdown)
				m.p.BreakdownRequests += ts.breakdown.Requests
				if m.p.BreakdownNanos == nil {
					m.p.BreakdownNanos = map[string]int64{}
				}
				for c, n := range ts.breakdown.CategoryNanos() {
					m.p.BreakdownNanos[c] += n
				}
			}
		}
	}
	for _, m := range bySlice {
		// A slice may hold only breakdowns (recorded a grace after requests of an earlier slice): no quantiles.
		if q, err := m.sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99}); err == nil {
			m.p.P50, m.p.P95, m.p.P99 = q[0], q[1], q[2]
			m.p.Latency = map[int]float64{}
			m.sketch.ForEach(func(value, count float64) bool {
				m.p.Latency[BucketOf(value)] += count
				return false
			})
		}
		d.Points = append(d.Points, m.p)
		d.Window.Requests += m.p.Requests
		d.Window.Errors += m.p.Errors
		d.Window.SumSeconds += m.p.SumSeconds
	}
	sort.Slice(d.Points, func(i, j int) bool { return d.Points[i].Start.Before(d.Points[j].Start) })
	return d
}

// RouteSummary is one route over a window.
type RouteSummary struct {
	RouteKey
	Requests, Errors             uint64
	SumSeconds                   float64
	P50, P95, P99, Max           float64 // seconds
	RequestsPerMinute, ErrorRate float64
}

// Summarize turns merged windows into summaries over covered, busiest first.
func Summarize(routes []RouteWindow, covered time.Duration) []RouteSummary {
	out := make([]RouteSummary, 0, len(routes))
	for _, rw := range routes {
		out = append(out, summarize(rw, covered))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Requests > out[j].Requests })
	return out
}

func summarize(rw RouteWindow, covered time.Duration) RouteSummary {
	s := RouteSummary{RouteKey: rw.RouteKey, Requests: rw.Requests, Errors: rw.Errors, SumSeconds: rw.SumSeconds}
	if rw.Requests == 0 {
		return s
	}
	q, _ := rw.Sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
	s.P50, s.P95, s.P99 = q[0], q[1], q[2]
	s.Max, _ = rw.Sketch.GetMaxValue()
	if covered > 0 {
		s.RequestsPerMinute = float64(s.Requests) / covered.Minutes()
	}
	s.ErrorRate = float64(s.Errors) / float64(s.Requests)
	return s
}

// Updated is when the last interval was recorded (zero before the first).
func (h *History) Updated() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.updated
}

func newSliceSketch() *ddsketch.DDSketch {
	s, _ := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, sliceMaxBins) // constant arguments: cannot fail
	return s
}
