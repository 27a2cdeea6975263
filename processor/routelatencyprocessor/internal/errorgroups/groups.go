package errorgroups

import (
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Exception is what one exception event (or an error status without one) says, as read from a span: its strings
// may point into the span.
type Exception struct {
	Type, Message, Stacktrace string
	// Fingerprint is the span's error.fingerprint: it replaces the computed key.
	Fingerprint string
	// Failed: the request failed (status error or 5xx); otherwise the exception was handled.
	Failed bool
}

// NoType is the type of an exception event without exception.type; StatusError of an error status without any
// exception event.
const (
	NoType      = "{no type}"
	StatusError = "{error status}"
	Other       = "{other}"
	// maxExamples bounds the trace ids kept per group.
	maxExamples = 5
)

// RouteKey names a route.
type RouteKey struct{ Service, Environment, Method, Route string }

// Limits bound the groups.
type Limits struct {
	// PerRoute groups are kept per route, PerService over a service's routes, {other} included: the kinds first
	// seen are kept apart, later ones fold into one {other} group per route, counts kept.
	PerRoute, PerService int
}

// Group is one kind of failure of a route.
type Group struct {
	Route       RouteKey
	Fingerprint string
	Type        string
	// Shape is the normalized message; TopFrame the innermost application frame.
	Shape, TopFrame string
	// Count is the requests that recorded it (sampling-adjusted); Failed those that failed, the rest handled it.
	Count, Failed       uint64
	FirstSeen, LastSeen time.Time
	FirstVersion        string
	ExampleMessage      string
	ExampleStacktrace   string
	ExampleTraceIDs     []string
}

// Counts is what the grouping did, for own telemetry (Drain resets it).
type Counts struct {
	// Recorded exceptions; Folded into {other} at a bound; Truncated messages or stack traces.
	Recorded, Folded, Truncated int64
}

// Groups holds the groups of every route. Safe for concurrent use.
type Groups struct {
	limits Limits
	masker *Masker

	mu         sync.Mutex
	routes     map[RouteKey]map[string]*Group
	perService map[string]int
	versions   map[string][]string // per service, the versions seen in order
	reads      map[readKey]read
	counts     Counts
	// metric counts per route and type since the last WriteMetrics (delta) or ever (cumulative).
	metric map[metricKey]uint64
	start  pcommon.Timestamp
}

type metricKey struct {
	route RouteKey
	typ   string
}

// New returns empty groups.
func New(limits Limits, masker *Masker, now pcommon.Timestamp) *Groups {
	return &Groups{limits: limits, masker: masker, routes: map[RouteKey]map[string]*Group{}, perService: map[string]int{},
		versions: map[string][]string{}, metric: map[metricKey]uint64{}, reads: map[readKey]read{}, start: now}
}

// read is what an exception's raw fields give once masked, normalized and parsed; Groups keeps the last ones by
// their raw fields, so that an exception seen again (the same error status, a parameterless message) costs no
// regular expression.
type read struct {
	typ, message, stack, shape, frame, key string
}

type readKey struct{ typ, message, stack, fingerprint string }

// maxReads bounds the cache of reads; past it, it starts afresh.
const maxReads = 4096

func (g *Groups) read(ex Exception) read {
	k := readKey{ex.Type, ex.Message, ex.Stacktrace, ex.Fingerprint}
	if r, ok := g.reads[k]; ok {
		return r
	}
	r := read{message: g.masker.Mask(ex.Message), stack: g.masker.Mask(ex.Stacktrace), typ: Clean(ex.Type, maxTypeLength)}
	if r.typ == "" {
		r.typ = NoType
	}
	r.shape, r.frame = Normalize(r.message), TopFrame(r.stack)
	r.key = "fp:" + Clean(g.masker.Mask(ex.Fingerprint), maxTypeLength)
	if ex.Fingerprint == "" {
		r.key = r.typ + "\x00" + r.shape + "\x00" + r.frame
	}
	if len(g.reads) >= maxReads {
		clear(g.reads)
	}
	g.reads[readKey{clone(ex.Type), clone(ex.Message), clone(ex.Stacktrace), clone(ex.Fingerprint)}] = r
	return r
}

// Record adds one exception of a request of route (version is the service's service.version).
func (g *Groups) Record(route RouteKey, version string, ex Exception, traceID pcommon.TraceID, count uint64, at time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.read(ex)
	typ, message, stack, shape, frame, key := r.typ, r.message, r.stack, r.shape, r.frame, r.key
	g.counts.Recorded++
	if len(ex.Message) > MaxMessageLength || len(ex.Stacktrace) > MaxStacktraceLength {
		g.counts.Truncated++
	}
	g.noteVersion(route.Service, version)
	groups, ok := g.routes[route]
	if !ok {
		route = RouteKey{clone(route.Service), clone(route.Environment), clone(route.Method), clone(route.Route)}
		groups = map[string]*Group{}
		g.routes[route] = groups
	}
	grp, ok := groups[key]
	if !ok {
		// The bounds count {other} in: a route shows at most PerRoute groups.
		if len(groups) >= g.limits.PerRoute-1 || g.perService[route.Service] >= g.limits.PerService-1 {
			g.counts.Folded++
			key, typ, shape, frame = Other, Other, "", ""
			grp, ok = groups[Other]
		}
		if !ok {
			grp = &Group{Route: route, Fingerprint: clone(key), Type: clone(typ), Shape: shape, TopFrame: clone(frame),
				FirstSeen: at, FirstVersion: clone(version),
				ExampleMessage: Clean(message, MaxMessageLength), ExampleStacktrace: Clean(stack, MaxStacktraceLength)}
			if key == Other {
				grp.ExampleMessage, grp.ExampleStacktrace = "", ""
			}
			groups[grp.Fingerprint] = grp
			g.perService[route.Service]++
		}
	}
	grp.Count += count
	if ex.Failed {
		grp.Failed += count
	}
	grp.LastSeen = at
	if !traceID.IsEmpty() && len(grp.ExampleTraceIDs) < maxExamples {
		grp.ExampleTraceIDs = append(grp.ExampleTraceIDs, traceID.String())
	}
	g.metric[metricKey{grp.Route, grp.Type}] += count
}

func (g *Groups) noteVersion(service, version string) {
	vs := g.versions[service]
	if len(vs) == 0 || vs[len(vs)-1] != version {
		for _, v := range vs {
			if v == version {
				return
			}
		}
		g.versions[clone(service)] = append(vs, clone(version))
	}
}

func clone(s string) string { return strings.Clone(s) }

// Drain returns the counts since the last Drain.
func (g *Groups) Drain() Counts {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.counts
	g.counts = Counts{}
	return c
}

// View is one group as the dashboard shows it.
type View struct {
	Group
	// Share is the group's part of the route's recorded exceptions; New: first seen in the service's latest
	// version, which is not its first.
	Share float64
	New   bool
	// Handled is Count - Failed.
	Handled uint64
}

// List returns the groups of the routes that match, busiest first.
func (g *Groups) List(match func(RouteKey) bool) []View {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []View
	for route, groups := range g.routes {
		if !match(route) {
			continue
		}
		total := uint64(0)
		for _, grp := range groups {
			total += grp.Count
		}
		vs := g.versions[route.Service]
		for _, grp := range groups {
			v := View{Group: *grp, Handled: grp.Count - grp.Failed}
			v.ExampleTraceIDs = append([]string(nil), grp.ExampleTraceIDs...)
			if total > 0 {
				v.Share = float64(grp.Count) / float64(total)
			}
			v.New = len(vs) > 1 && grp.FirstVersion == vs[len(vs)-1] && grp.Fingerprint != Other
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	return out
}

// MetricExceptions counts requests per route and exception type that recorded an exception.
const MetricExceptions = "http.server.route.exceptions"

// WriteMetrics appends http.server.route.exceptions per route and exception type (bounded as the groups are) to
// md; delta restarts the counts.
func (g *Groups) WriteMetrics(md pmetric.Metrics, scope string, delta bool, instanceID string, now pcommon.Timestamp) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.metric) == 0 {
		return
	}
	keys := make([]metricKey, 0, len(g.metric))
	for k := range g.metric {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route.Service+a.route.Environment+a.route.Route+a.route.Method < b.route.Service+b.route.Environment+b.route.Route+b.route.Method
		}
		return a.typ < b.typ
	})
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(scope)
	m := sm.Metrics().AppendEmpty()
	m.SetName(MetricExceptions)
	m.SetUnit("{request}")
	m.SetDescription("Requests per route and exception type that recorded an exception (handled or not), from every span before sampling.")
	sum := m.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	if delta {
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	}
	for _, k := range keys {
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(g.start)
		dp.SetTimestamp(now)
		dp.SetIntValue(int64(g.metric[k]))
		a := dp.Attributes()
		a.PutStr(semconv.ServiceName, k.route.Service)
		if k.route.Environment != "" {
			a.PutStr(semconv.DeploymentEnvironmentName, k.route.Environment)
		}
		a.PutStr(semconv.HTTPRequestMethod, k.route.Method)
		a.PutStr(semconv.HTTPRoute, k.route.Route)
		a.PutStr("exception.type", k.typ)
		if instanceID != "" {
			a.PutStr(semconv.CollectorInstanceID, instanceID)
		}
	}
	if delta {
		clear(g.metric)
		g.start = now
	}
}
