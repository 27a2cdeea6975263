// Package dashboard keeps a bounded in-memory history of per-route latency sketches and serves it as a read-only
// web page and a JSON API. It knows nothing of spans: the connector hands it each flushed interval.
package dashboard // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"

import (
	"sort"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// sliceMaxBins bounds one slice's sketch: at 1% accuracy 1024 bins span latencies from 1 us to over 10 minutes.
const sliceMaxBins = 1024

// RouteKey identifies a route on the dashboard; status codes of a route are merged.
type RouteKey struct {
	Service, Environment, Method, Route string
}

// History holds, per route, a ring of time slices, each with request and error counts and a merged sketch.
// Memory is bounded by MaxRoutes x (History / Slice) x one sketch of at most 1024 bins of 8 bytes.
type History struct {
	slice     time.Duration
	slices    int
	maxRoutes int

	mu     sync.Mutex
	routes map[RouteKey]*routeHistory
	// dropped counts intervals of routes beyond maxRoutes, which the dashboard does not show.
	dropped uint64
	// since is the start of the first slice recorded: rates are over the time the history covers, not over a window
	// longer than the gateway has run.
	since time.Time
}

type routeHistory struct {
	ring []*timeSlice // index: slice number modulo len(ring)
}

type timeSlice struct {
	start            time.Time
	requests, errors uint64
	sketch           *ddsketch.DDSketch
}

// NewHistory keeps history/slice slices per route for at most maxRoutes routes.
func NewHistory(slice, history time.Duration, maxRoutes int) *History {
	return &History{slice: slice, slices: int(history / slice), maxRoutes: maxRoutes, routes: map[RouteKey]*routeHistory{}}
}

// Record adds one flushed interval of a route: its request sketch (seconds; its count is the interval's requests)
// and error count. The sketch is merged, not kept.
func (h *History) Record(key RouteKey, sketch *ddsketch.DDSketch, errors uint64, at time.Time) {
	if sketch.IsEmpty() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rh, ok := h.routes[key]
	if !ok {
		if len(h.routes) >= h.maxRoutes {
			h.dropped++
			return
		}
		rh = &routeHistory{ring: make([]*timeSlice, h.slices)}
		h.routes[key] = rh
	}
	start := at.Truncate(h.slice)
	if h.since.IsZero() || start.Before(h.since) {
		h.since = start
	}
	i := int(start.UnixNano()/int64(h.slice)) % h.slices
	ts := rh.ring[i]
	if ts == nil || !ts.start.Equal(start) {
		ts = &timeSlice{start: start, sketch: newSliceSketch()}
		rh.ring[i] = ts
	}
	ts.requests += uint64(sketch.GetCount())
	ts.errors += errors
	_ = ts.sketch.MergeWith(sketch) // same index mapping (1% logarithmic): cannot fail
}

// RouteSummary is one route over a window.
type RouteSummary struct {
	RouteKey
	Requests, Errors             uint64
	P50, P95, P99, Max           float64 // seconds
	RequestsPerMinute, ErrorRate float64
}

// Point is one slice of a route's series.
type Point struct {
	Start            time.Time
	Requests, Errors uint64
	P50, P95, P99    float64 // seconds
}

// RouteWindow is one route merged over a window: what a replica hands its peers for the fleet view.
type RouteWindow struct {
	RouteKey
	Requests, Errors uint64
	Sketch           *ddsketch.DDSketch // seconds
}

// Windows returns every route with traffic in the window ending at now, each merged over the window's slices, and
// how much of the window the history covers (rates are over that, not over a window longer than the gateway ran).
func (h *History) Windows(window time.Duration, now time.Time) (routes []RouteWindow, covered time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	from := now.Add(-window).Truncate(h.slice)
	covered = window
	if d := now.Sub(h.since); d < covered {
		covered = max(d, h.slice)
	}
	for key, rh := range h.routes {
		rw := RouteWindow{RouteKey: key, Sketch: newSliceSketch()}
		for _, ts := range rh.ring {
			if ts == nil || ts.start.Before(from) || ts.start.After(now) {
				continue
			}
			rw.Requests += ts.requests
			rw.Errors += ts.errors
			_ = rw.Sketch.MergeWith(ts.sketch)
		}
		if rw.Requests > 0 {
			routes = append(routes, rw)
		}
	}
	return routes, covered
}

// Summaries returns every route with traffic in the window ending at now.
func (h *History) Summaries(window time.Duration, now time.Time) []RouteSummary {
	return Summarize(h.Windows(window, now))
}

// Summarize turns merged windows into summaries over covered: busiest first, catch-all routes ({unmatched},
// {overflow}) after every real one, so that a scanner's 404s do not head the table.
func Summarize(routes []RouteWindow, covered time.Duration) []RouteSummary {
	out := make([]RouteSummary, 0, len(routes))
	for _, rw := range routes {
		s := RouteSummary{RouteKey: rw.RouteKey, Requests: rw.Requests, Errors: rw.Errors}
		q, _ := rw.Sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
		s.P50, s.P95, s.P99 = q[0], q[1], q[2]
		s.Max, _ = rw.Sketch.GetMaxValue()
		s.RequestsPerMinute = float64(s.Requests) / covered.Minutes()
		s.ErrorRate = float64(s.Errors) / float64(s.Requests)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if a, b := isCatchAll(out[i].Route), isCatchAll(out[j].Route); a != b {
			return b
		}
		return out[i].Requests > out[j].Requests
	})
	return out
}

func newSliceSketch() *ddsketch.DDSketch {
	s, _ := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, sliceMaxBins) // constant arguments: cannot fail
	return s
}

// Series returns a route's slices in the window, oldest first; slices without traffic are left out.
func (h *History) Series(key RouteKey, window time.Duration, now time.Time) []Point {
	h.mu.Lock()
	defer h.mu.Unlock()
	rh, ok := h.routes[key]
	if !ok {
		return nil
	}
	from := now.Add(-window).Truncate(h.slice)
	var out []Point
	for _, ts := range rh.ring {
		if ts == nil || ts.start.Before(from) || ts.start.After(now) {
			continue
		}
		q, _ := ts.sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
		out = append(out, Point{Start: ts.start, Requests: ts.requests, Errors: ts.errors, P50: q[0], P95: q[1], P99: q[2]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// SliceDuration is the width of one slice.
func (h *History) SliceDuration() time.Duration { return h.slice }
