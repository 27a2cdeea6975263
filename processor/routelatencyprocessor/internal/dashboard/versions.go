package dashboard

import (
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// Versions tracks, per service and environment, the versions it ran (service.version), each with its own counts
// and latency sketch per route: which routes a version brought and which it made slower or more erroring. At most
// maxVersions per service are kept apart; older ones fold into OlderVersions.
type Versions struct {
	maxVersions int

	mu       sync.Mutex
	services map[ServiceKey]*serviceVersions
}

// ServiceKey is a service in an environment.
type ServiceKey struct{ Service, Environment string }

// OlderVersions takes the versions past the bound, merged.
const OlderVersions = "{older}"

// NoVersion stands for spans without service.version.
const NoVersion = "{none}"

type serviceVersions struct {
	versions []*versionStats // in the order first seen
	dirty    bool
}

type versionStats struct {
	name                string
	firstSeen, lastSeen time.Time
	routes              map[MethodRoute]*versionRoute
}

// MethodRoute is a route of a service.
type MethodRoute struct{ Method, Route string }

type versionRoute struct {
	requests, errors uint64
	sketch           *ddsketch.DDSketch
}

// NewVersions keeps maxVersions versions apart per service.
func NewVersions(maxVersions int) *Versions {
	return &Versions{maxVersions: maxVersions, services: map[ServiceKey]*serviceVersions{}}
}

// Record counts count requests of seconds each on a route of a version (strings may point into spans: copied when
// kept).
func (v *Versions) Record(svc ServiceKey, version string, r MethodRoute, seconds float64, failed bool, count uint64, at time.Time) {
	if version == "" {
		version = NoVersion
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	sv, ok := v.services[svc]
	if !ok {
		sv = &serviceVersions{}
		v.services[ServiceKey{clone(svc.Service), clone(svc.Environment)}] = sv
	}
	vs := sv.version(version, at, v.maxVersions)
	vs.lastSeen = at
	vr, ok := vs.routes[r]
	if !ok {
		vr = &versionRoute{sketch: newSliceSketch()}
		vs.routes[MethodRoute{clone(r.Method), clone(r.Route)}] = vr
	}
	vr.requests += count
	if failed {
		vr.errors += count
	}
	_ = vr.sketch.AddWithCount(seconds, float64(count))
	sv.dirty = true
}

func clone(s string) string { return strings.Clone(s) }

// version returns the version's stats, making them (and folding the oldest past max) when it is new.
func (sv *serviceVersions) version(name string, at time.Time, maxVersions int) *versionStats {
	for i := len(sv.versions) - 1; i >= 0; i-- {
		if sv.versions[i].name == name {
			return sv.versions[i]
		}
	}
	vs := &versionStats{name: clone(name), firstSeen: at, routes: map[MethodRoute]*versionRoute{}}
	sv.versions = append(sv.versions, vs)
	if kept := sv.kept(); kept > maxVersions {
		sv.fold()
	}
	return vs
}

// kept counts the versions kept apart.
func (sv *serviceVersions) kept() int {
	n := len(sv.versions)
	if n > 0 && sv.versions[0].name == OlderVersions {
		n--
	}
	return n
}

// fold merges the oldest version kept apart into OlderVersions.
func (sv *serviceVersions) fold() {
	i := 0
	if sv.versions[0].name == OlderVersions {
		i = 1
	}
	oldest := sv.versions[i]
	if i == 0 {
		older := &versionStats{name: OlderVersions, firstSeen: oldest.firstSeen, lastSeen: oldest.lastSeen, routes: oldest.routes}
		sv.versions[0] = older
		return
	}
	older := sv.versions[0]
	older.lastSeen = maxTime(older.lastSeen, oldest.lastSeen)
	for r, vr := range oldest.routes {
		o, ok := older.routes[r]
		if !ok {
			older.routes[r] = vr
			continue
		}
		o.requests += vr.requests
		o.errors += vr.errors
		_ = o.sketch.MergeWith(vr.sketch)
	}
	sv.versions = append(sv.versions[:1], sv.versions[2:]...)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// The noise bounds under which a route is not flagged as changed between two versions: both versions served at
// least minComparable requests of it, and its p99 moved by more than p99Change (the sketches' 1 % is well
// inside) and by more than p99ChangeMs (a sub-millisecond route's p99 moves by more than a fifth from run to run),
// or its error rate moved by more than a point and two standard errors.
const (
	minComparable = 30
	p99Change     = 0.2
	p99ChangeMs   = 5
)

// VersionJSON is one version of a service, newest first in /api/versions.
type VersionJSON struct {
	Version   string    `json:"version"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Requests  uint64    `json:"requests"`
	Errors    uint64    `json:"errors"`
	ErrorRate float64   `json:"error_rate"`
	P50Ms     float64   `json:"p50_ms"`
	P95Ms     float64   `json:"p95_ms"`
	P99Ms     float64   `json:"p99_ms"`
	// NewRoutes are the routes this version served that the previous one did not.
	NewRoutes []string `json:"new_routes"`
	// Changed are the routes whose p99 or error rate moved beyond the noise bounds against the previous version.
	Changed []RouteChangeJSON  `json:"changed"`
	Routes  []VersionRouteJSON `json:"routes"`
}

// VersionRouteJSON is one route under one version.
type VersionRouteJSON struct {
	Method    string  `json:"method"`
	Route     string  `json:"route"`
	Requests  uint64  `json:"requests"`
	Errors    uint64  `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P95Ms     float64 `json:"p95_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// RouteChangeJSON is a route that changed between a version and the one before.
type RouteChangeJSON struct {
	Method, Route string
	// Slower or faster (p99), more or fewer errors.
	What         string  `json:"what"`
	P99BeforeMs  float64 `json:"p99_before_ms"`
	P99AfterMs   float64 `json:"p99_after_ms"`
	ErrorsBefore float64 `json:"error_rate_before"`
	ErrorsAfter  float64 `json:"error_rate_after"`
}

func routeJSON(r MethodRoute, vr *versionRoute) VersionRouteJSON {
	out := VersionRouteJSON{Method: r.Method, Route: r.Route, Requests: vr.requests, Errors: vr.errors}
	if vr.requests > 0 {
		out.ErrorRate = float64(vr.errors) / float64(vr.requests)
	}
	if q, err := vr.sketch.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99}); err == nil {
		out.P50Ms, out.P95Ms, out.P99Ms = millis(q[0]), millis(q[1]), millis(q[2])
	}
	return out
}

// lookup returns a service's versions in one environment, or merged over all of them when svc.Environment is
// empty (the caller holds mu).
func (v *Versions) lookup(svc ServiceKey) (*serviceVersions, bool) {
	if svc.Environment != "" {
		sv, ok := v.services[svc]
		return sv, ok
	}
	merged := &serviceVersions{}
	byName := map[string]*versionStats{}
	for k, sv := range v.services {
		if k.Service != svc.Service {
			continue
		}
		for _, vs := range sv.versions {
			m, ok := byName[vs.name]
			if !ok {
				m = &versionStats{name: vs.name, firstSeen: vs.firstSeen, lastSeen: vs.lastSeen, routes: map[MethodRoute]*versionRoute{}}
				byName[vs.name] = m
				merged.versions = append(merged.versions, m)
			}
			if vs.firstSeen.Before(m.firstSeen) {
				m.firstSeen = vs.firstSeen
			}
			m.lastSeen = maxTime(m.lastSeen, vs.lastSeen)
			for r, vr := range vs.routes {
				o, ok := m.routes[r]
				if !ok {
					o = &versionRoute{sketch: newSliceSketch()}
					m.routes[r] = o
				}
				o.requests += vr.requests
				o.errors += vr.errors
				_ = o.sketch.MergeWith(vr.sketch)
			}
		}
	}
	sort.SliceStable(merged.versions, func(i, j int) bool { return merged.versions[i].firstSeen.Before(merged.versions[j].firstSeen) })
	return merged, len(merged.versions) > 0
}

// Table returns a service's versions, newest first, each compared with the one before it; over every environment
// when svc.Environment is empty.
func (v *Versions) Table(svc ServiceKey) []VersionJSON {
	v.mu.Lock()
	defer v.mu.Unlock()
	sv, ok := v.lookup(svc)
	if !ok {
		return []VersionJSON{}
	}
	out := make([]VersionJSON, 0, len(sv.versions))
	for i, vs := range sv.versions {
		all := &versionRoute{sketch: newSliceSketch()}
		vj := VersionJSON{Version: vs.name, FirstSeen: vs.firstSeen, LastSeen: vs.lastSeen, NewRoutes: []string{}, Changed: []RouteChangeJSON{}}
		for r, vr := range vs.routes {
			all.requests += vr.requests
			all.errors += vr.errors
			_ = all.sketch.MergeWith(vr.sketch)
			vj.Routes = append(vj.Routes, routeJSON(r, vr))
		}
		sort.Slice(vj.Routes, func(a, b int) bool { return vj.Routes[a].Requests > vj.Routes[b].Requests })
		total := routeJSON(MethodRoute{}, all)
		vj.Requests, vj.Errors, vj.ErrorRate, vj.P50Ms, vj.P95Ms, vj.P99Ms = total.Requests, total.Errors, total.ErrorRate, total.P50Ms, total.P95Ms, total.P99Ms
		if i > 0 {
			vj.NewRoutes, vj.Changed = compare(sv.versions[i-1], vs)
		}
		out = append(out, vj)
	}
	slices.Reverse(out)
	return out
}

// compare lists the routes after brought, and those it changed beyond the noise bounds.
func compare(before, after *versionStats) (newRoutes []string, changed []RouteChangeJSON) {
	newRoutes, changed = []string{}, []RouteChangeJSON{}
	for r, a := range after.routes {
		b, ok := before.routes[r]
		if !ok {
			newRoutes = append(newRoutes, r.Method+" "+r.Route)
			continue
		}
		if a.requests < minComparable || b.requests < minComparable {
			continue
		}
		ra, rb := routeJSON(r, a), routeJSON(r, b)
		c := RouteChangeJSON{Method: r.Method, Route: r.Route, P99BeforeMs: rb.P99Ms, P99AfterMs: ra.P99Ms, ErrorsBefore: rb.ErrorRate, ErrorsAfter: ra.ErrorRate}
		switch {
		case ra.P99Ms > rb.P99Ms*(1+p99Change) && ra.P99Ms-rb.P99Ms > p99ChangeMs:
			c.What = "slower"
		case ra.P99Ms < rb.P99Ms*(1-p99Change) && rb.P99Ms-ra.P99Ms > p99ChangeMs:
			c.What = "faster"
		}
		p := float64(a.errors+b.errors) / float64(a.requests+b.requests)
		se := math.Sqrt(p * (1 - p) * (1/float64(a.requests) + 1/float64(b.requests)))
		if d := ra.ErrorRate - rb.ErrorRate; d > 0.01 && d > 2*se {
			c.What = join(c.What, "more errors")
		} else if -d > 0.01 && -d > 2*se {
			c.What = join(c.What, "fewer errors")
		}
		if c.What != "" {
			changed = append(changed, c)
		}
	}
	sort.Strings(newRoutes)
	sort.Slice(changed, func(i, j int) bool { return changed[i].Method+changed[i].Route < changed[j].Method+changed[j].Route })
	return newRoutes, changed
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ", " + b
}

// Markers are the versions' first-seen times of a service, for the charts.
func (v *Versions) Markers(svc ServiceKey) []VersionMarker {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []VersionMarker
	if sv, ok := v.lookup(svc); ok {
		for _, vs := range sv.versions {
			if vs.name != OlderVersions {
				out = append(out, VersionMarker{Version: vs.name, At: vs.firstSeen})
			}
		}
	}
	return out
}

// VersionMarker is when a version was first seen.
type VersionMarker struct {
	Version string    `json:"version"`
	At      time.Time `json:"at"`
}

// apiVersions serves a service's versions table; with method and route, the comparison of its last two versions
// on that route.
func (s *Server) apiVersions(w http.ResponseWriter, r *http.Request) {
	if s.opts.Versions == nil {
		writeJSON(w, map[string]any{"versions": []VersionJSON{}})
		return
	}
	q := r.URL.Query()
	svc := ServiceKey{q.Get("service"), q.Get("environment")}
	table := s.opts.Versions.Table(svc)
	body := map[string]any{"versions": table, "noise": map[string]any{"min_requests": minComparable, "p99_change": p99Change, "p99_change_ms": p99ChangeMs}}
	if method, route := q.Get("method"), q.Get("route"); route != "" {
		var compared []map[string]any
		for _, v := range table[:min(2, len(table))] {
			row := map[string]any{"version": v.Version, "first_seen": v.FirstSeen}
			for _, rj := range v.Routes {
				if rj.Method == method && rj.Route == route {
					row["route"] = rj
				}
			}
			compared = append(compared, row)
		}
		body["compare"] = compared
	}
	writeJSON(w, body)
}

// VersionsKey holds the versions of every service, persisted with the history.
const VersionsKey = "history/versions"

// Changes returns the versions' record when they changed since the last call (nil otherwise).
func (v *Versions) Changes() []Change {
	v.mu.Lock()
	defer v.mu.Unlock()
	dirty := false
	for _, sv := range v.services {
		dirty = dirty || sv.dirty
		sv.dirty = false
	}
	if !dirty {
		return nil
	}
	var e encoder
	e.u64(formatVersion)
	e.u64(uint64(len(v.services)))
	for k, sv := range v.services {
		e.str(k.Service)
		e.str(k.Environment)
		e.u64(uint64(len(sv.versions)))
		for _, vs := range sv.versions {
			e.str(vs.name)
			e.time(vs.firstSeen)
			e.time(vs.lastSeen)
			e.u64(uint64(len(vs.routes)))
			for r, vr := range vs.routes {
				e.str(r.Method)
				e.str(r.Route)
				e.u64(vr.requests)
				e.u64(vr.errors)
				e.sketch(vr.sketch)
			}
		}
	}
	return []Change{{Key: VersionsKey, Value: e.b}}
}

// Restore reads the versions back (nothing when none were persisted); on an error wrapping ErrUnreadable they stay
// empty.
func (v *Versions) Restore(get func(key string) ([]byte, error)) error {
	raw, err := get(VersionsKey)
	if err != nil || raw == nil {
		return err
	}
	d := decoder{b: raw}
	if ver := d.u64(); ver != formatVersion && d.err == nil {
		return fmt.Errorf("%w: versions format %d", ErrUnreadable, ver)
	}
	services := map[ServiceKey]*serviceVersions{}
	for range d.count() {
		k := ServiceKey{d.str(), d.str()}
		sv := &serviceVersions{}
		for range d.count() {
			vs := &versionStats{name: d.str(), firstSeen: d.time(), lastSeen: d.time(), routes: map[MethodRoute]*versionRoute{}}
			for range d.count() {
				r := MethodRoute{d.str(), d.str()}
				vr := &versionRoute{requests: d.u64(), errors: d.u64(), sketch: newSliceSketch()}
				d.sketch(vr.sketch)
				vs.routes[r] = vr
			}
			sv.versions = append(sv.versions, vs)
		}
		services[k] = sv
	}
	if d.err != nil {
		return fmt.Errorf("%w: versions: %v", ErrUnreadable, d.err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.services = services
	return nil
}
