package slo

import (
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Metric names and attribute keys of what Counts writes.
const (
	MetricEvents    = "slo.events"
	MetricObjective = "slo.objective"
	MetricWindow    = "slo.window"
	MetricThreshold = "slo.threshold"
	AttrName        = "slo.name"
	AttrOutcome     = "outcome"
	// OverflowRoute takes the routes of an objective beyond the bound on counted routes.
	OverflowRoute = "{overflow}"
)

// Route names the requests one route's counts are for. Record takes strings from span memory; Counts owns copies.
type Route struct{ Service, Environment, Method, Route string }

// Outcome is a route's good and bad requests under one objective.
type Outcome struct{ Good, Bad uint64 }

// Counts counts each request against the objectives it matches, per objective and route. Safe for concurrent use.
type Counts struct {
	objectives []Objective
	maxRoutes  int
	delta      bool
	instanceID string
	scope      string

	mu sync.Mutex
	// routes holds, per route seen, the objectives it matches and their counts: one lookup per request.
	routes map[Route]*routeCounts
	// counted is how many (objective, route) counts exist, bounded by maxRoutes per objective.
	counted []int
	// overflow takes, per objective, the requests of routes beyond the bound.
	overflow []Outcome
	start    pcommon.Timestamp
	interval map[Route]*routeCounts // routes recorded into since the last Flush
}

type routeCounts struct {
	objectives []int // indices into Counts.objectives
	outcomes   []Outcome
	// interval is the counts since the last Flush, whatever the temporality (the dashboard's slices).
	interval []Outcome
	// overflow is set on the objectives whose routes were full when this route came: it counts into the overflow.
	overflow []bool
}

// Options shape the metrics Counts writes.
type Options struct {
	// MaxRoutes bounds the routes counted per objective; the rest count into one {overflow} route.
	MaxRoutes int
	// Delta writes delta sums (Datadog) instead of cumulative ones (Prometheus).
	Delta bool
	// InstanceID, when set, is written as collector.instance.id: one writer per cumulative series.
	InstanceID string
	// ScopeName is the instrumentation scope of the metrics.
	ScopeName string
}

// NewCounts counts against objectives (validated, defaults filled in).
func NewCounts(objectives []Objective, opts Options, now pcommon.Timestamp) *Counts {
	return &Counts{
		objectives: objectives, maxRoutes: opts.MaxRoutes, delta: opts.Delta, instanceID: opts.InstanceID, scope: opts.ScopeName,
		routes: map[Route]*routeCounts{}, counted: make([]int, len(objectives)), overflow: make([]Outcome, len(objectives)),
		start: now, interval: map[Route]*routeCounts{},
	}
}

// Objectives returns the objectives counted against.
func (c *Counts) Objectives() []Objective { return c.objectives }

// Record counts count requests (a sampled span stands for several) of one route, of nanos each, against every
// objective the route matches.
func (c *Counts) Record(route Route, nanos, statusCode int64, failed bool, count uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc, ok := c.routes[route]
	if !ok {
		rc = c.add(route)
	}
	if len(rc.objectives) == 0 {
		return
	}
	for i, o := range rc.objectives {
		out, iv := &rc.outcomes[i], &rc.interval[i]
		if rc.overflow[i] {
			out, iv = &c.overflow[o], &Outcome{}
		}
		if c.objectives[o].Good(nanos, statusCode, failed) {
			out.Good += count
			iv.Good += count
		} else {
			out.Bad += count
			iv.Bad += count
		}
	}
	c.interval[route] = rc
}

// add makes a route's entry with owned strings (the caller holds mu). A route that matches nothing keeps an empty
// entry, so that it is matched once; those entries are bounded too, past which matching is done again each time.
func (c *Counts) add(route Route) *routeCounts {
	rc := &routeCounts{}
	for i := range c.objectives {
		if c.objectives[i].Matches(route.Service, route.Environment, route.Method, route.Route) {
			rc.objectives = append(rc.objectives, i)
			rc.outcomes = append(rc.outcomes, Outcome{})
			rc.interval = append(rc.interval, Outcome{})
			full := c.counted[i] >= c.maxRoutes
			rc.overflow = append(rc.overflow, full)
			if !full {
				c.counted[i]++
			}
		}
	}
	if len(rc.objectives) == 0 && len(c.routes) >= 4*c.maxRoutes*max(1, len(c.objectives)) {
		return rc
	}
	owned := Route{strings.Clone(route.Service), strings.Clone(route.Environment), strings.Clone(route.Method), strings.Clone(route.Route)}
	c.routes[owned] = rc
	return rc
}

// Snapshot is one objective's counts over the routes it matched, since the last Flush.
type Snapshot struct {
	Objective int
	Route     Route
	Outcome   Outcome
}

// Flush writes slo.events (per objective, route and outcome) and the objectives' gauges into md, and returns the
// counts of the interval (for the dashboard). With delta temporality the counts start again from zero.
func (c *Counts) Flush(md pmetric.Metrics, now pcommon.Timestamp) []Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Snapshot
	for route, rc := range c.interval {
		for i, o := range rc.objectives {
			if !rc.overflow[i] {
				out = append(out, Snapshot{o, route, rc.interval[i]})
			}
		}
		clear(rc.interval)
	}
	c.writeEvents(md, now)
	c.writeGauges(md, now)
	clear(c.interval)
	if c.delta {
		for _, rc := range c.routes {
			clear(rc.outcomes)
		}
		clear(c.overflow)
		c.start = now
	}
	return out
}

func (c *Counts) writeEvents(md pmetric.Metrics, now pcommon.Timestamp) {
	routes := make([]Route, 0, len(c.routes))
	for r, rc := range c.routes {
		if len(rc.objectives) > 0 && (!c.delta || c.interval[r] != nil) {
			routes = append(routes, r)
		}
	}
	sort.Slice(routes, func(i, j int) bool { return less(routes[i], routes[j]) })
	resources := map[[2]string]pmetric.NumberDataPointSlice{}
	points := func(service, environment string) pmetric.NumberDataPointSlice {
		if dps, ok := resources[[2]string{service, environment}]; ok {
			return dps
		}
		rm := md.ResourceMetrics().AppendEmpty()
		if service != "" {
			rm.Resource().Attributes().PutStr(semconv.ServiceName, service)
		}
		if environment != "" {
			rm.Resource().Attributes().PutStr(semconv.DeploymentEnvironmentName, environment)
		}
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(c.scope)
		m := sm.Metrics().AppendEmpty()
		m.SetName(MetricEvents)
		m.SetUnit("{request}")
		m.SetDescription("Requests counted against each service level objective, good or bad, per route.")
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		if c.delta {
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		} else {
			sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		}
		resources[[2]string{service, environment}] = sum.DataPoints()
		return sum.DataPoints()
	}
	write := func(dps pmetric.NumberDataPointSlice, name string, route Route, out Outcome) {
		for _, o := range [...]struct {
			outcome string
			n       uint64
		}{{"good", out.Good}, {"bad", out.Bad}} {
			dp := dps.AppendEmpty()
			dp.SetStartTimestamp(c.start)
			dp.SetTimestamp(now)
			dp.SetIntValue(int64(o.n))
			a := dp.Attributes()
			a.PutStr(AttrName, name)
			a.PutStr(AttrOutcome, o.outcome)
			if route.Service != "" {
				a.PutStr(semconv.ServiceName, route.Service)
			}
			if route.Environment != "" {
				a.PutStr(semconv.DeploymentEnvironmentName, route.Environment)
			}
			a.PutStr(semconv.HTTPRequestMethod, route.Method)
			a.PutStr(semconv.HTTPRoute, route.Route)
			if c.instanceID != "" {
				a.PutStr(semconv.CollectorInstanceID, c.instanceID)
			}
		}
	}
	for _, r := range routes {
		rc := c.routes[r]
		for i, o := range rc.objectives {
			if !rc.overflow[i] {
				write(points(r.Service, r.Environment), c.objectives[o].Name, r, rc.outcomes[i])
			}
		}
	}
	for o, out := range c.overflow {
		if out != (Outcome{}) || !c.delta && c.counted[o] >= c.maxRoutes {
			write(points("", ""), c.objectives[o].Name, Route{Route: OverflowRoute}, out)
		}
	}
}

// writeGauges writes each objective's target (a ratio), window and latency threshold (seconds), for dashboards
// and alerts that read them beside the counts.
func (c *Counts) writeGauges(md pmetric.Metrics, now pcommon.Timestamp) {
	if len(c.objectives) == 0 {
		return
	}
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(c.scope)
	gauge := func(name, unit, description string) pmetric.NumberDataPointSlice {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		m.SetUnit(unit)
		m.SetDescription(description)
		return m.SetEmptyGauge().DataPoints()
	}
	objective := gauge(MetricObjective, "1", "The ratio of good requests each service level objective promises (0.999 for 99.9 %).")
	window := gauge(MetricWindow, "s", "Each service level objective's compliance window.")
	var threshold pmetric.NumberDataPointSlice
	hasThreshold := false
	for _, o := range c.objectives {
		point := func(dps pmetric.NumberDataPointSlice, v float64) {
			dp := dps.AppendEmpty()
			dp.SetTimestamp(now)
			dp.SetDoubleValue(v)
			dp.Attributes().PutStr(AttrName, o.Name)
			if c.instanceID != "" {
				dp.Attributes().PutStr(semconv.CollectorInstanceID, c.instanceID)
			}
		}
		point(objective, o.TargetRatio())
		point(window, o.Window.Seconds())
		if o.Indicator == Latency {
			if !hasThreshold {
				hasThreshold = true
				threshold = gauge(MetricThreshold, "s", "Each latency objective's threshold: a request that took longer is bad.")
			}
			point(threshold, o.Threshold.Seconds())
		}
	}
}

func less(a, b Route) bool {
	if a.Service != b.Service {
		return a.Service < b.Service
	}
	if a.Environment != b.Environment {
		return a.Environment < b.Environment
	}
	if a.Route != b.Route {
		return a.Route < b.Route
	}
	return a.Method < b.Method
}
