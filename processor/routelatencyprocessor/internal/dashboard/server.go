package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/breakdown"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

// The pages are static: a small script draws every chart as SVG from the JSON API (no library, no build step,
// nothing fetched from elsewhere), so a chart and the API never disagree and the page works offline.
//
//go:embed static
var static embed.FS

// Windows are the periods the page offers; the API takes any of them that the history's span holds.
var Windows = []string{"1m", "5m", "15m", "1h", "6h", "1d", "7d"}

// windowDuration reads a window's name (time.ParseDuration has no days).
func windowDuration(name string) time.Duration {
	if days, ok := strings.CutSuffix(name, "d"); ok {
		n, _ := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour
	}
	d, _ := time.ParseDuration(name)
	return d
}

// windows are the Windows the history's span holds.
func (s *Server) windows() []string {
	var out []string
	for _, w := range Windows {
		if windowDuration(w) <= s.history.Span() {
			out = append(out, w)
		}
	}
	return out
}

// lowTraffic: a guessed route with fewer requests than this in the window is grouped with the catch-all routes
// below the declared ones (a scanner's one-hit paths must not fill the table).
const lowTraffic = 5

// RouteInfo tells what the resolver knows of a route.
type RouteInfo interface {
	// Undocumented: the service has OpenAPI documents and none of them has the route.
	Undocumented(service, route string) bool
	// Guessed: the route was templated from raw paths, not declared by the service.
	Guessed(service, route string) bool
}

// Options are the server's settings; every field may be left empty.
type Options struct {
	JaegerUI    string // the Jaeger UI's base URL, for links to traces
	BearerToken string
	Routes      RouteInfo
	Instance    string // this replica's service.instance.id
	Peers       *Peers // the other replicas, for the fleet view
	// FlushInterval is how often the history gets new data: the page's default refresh.
	FlushInterval time.Duration
	// Now is the clock windows end at: the connector's, so that the page and the history agree (time.Now if nil).
	Now func() time.Time
	// Objectives are the connector's service level objectives (defaults filled in), for /api/slos.
	Objectives []slo.Objective
	// Versions are the services' versions, for /api/versions and the charts' markers (nil: none tracked).
	Versions *Versions
	// Errors are the error groups per route, for /api/errors (nil: none kept).
	Errors *errorgroups.Groups
}

// Server serves the pages and the JSON API from a History.
type Server struct {
	history *History
	opts    Options
	now     func() time.Time
	server  *http.Server
}

// NewServer builds the handlers.
func NewServer(history *History, opts Options) *Server {
	opts.JaegerUI = strings.TrimSuffix(opts.JaegerUI, "/")
	s := &Server{history: history, opts: opts, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.file("static/index.html"))
	mux.HandleFunc("GET /route", s.file("static/route.html"))
	mux.HandleFunc("GET /dashboard.js", s.file("static/dashboard.js"))
	mux.HandleFunc("GET /dashboard.css", s.file("static/dashboard.css"))
	mux.HandleFunc("GET /api/routes", s.apiRoutes)
	mux.HandleFunc("GET /api/series", s.apiSeries)
	mux.HandleFunc("GET /api/sketches", s.apiSketches)
	mux.HandleFunc("GET /api/slos", s.apiSLOs)
	mux.HandleFunc("GET /api/versions", s.apiVersions)
	mux.HandleFunc("GET /api/errors", s.apiErrors)
	s.server = &http.Server{Handler: s.authorized(mux), ReadHeaderTimeout: 5 * time.Second}
	return s
}

// Start listens on endpoint (for example localhost:8890).
func (s *Server) Start(endpoint string) error {
	l, err := net.Listen("tcp", endpoint)
	if err != nil {
		return fmt.Errorf("dashboard.endpoint %q: %w", endpoint, err)
	}
	go func() { _ = s.server.Serve(l) }()
	return nil
}

// Shutdown stops the server.
func (s *Server) Shutdown(ctx context.Context) error { return s.server.Shutdown(ctx) }

// Handler is the server's handler, for tests.
func (s *Server) Handler() http.Handler { return s.server.Handler }

func (s *Server) authorized(next http.Handler) http.Handler {
	if s.opts.BearerToken == "" {
		return next
	}
	want := []byte("Bearer " + s.opts.BearerToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) file(name string) http.HandlerFunc {
	body, err := static.ReadFile(name)
	if err != nil {
		panic(err) // embedded at build time
	}
	contentType := "text/html; charset=utf-8"
	switch {
	case strings.HasSuffix(name, ".js"):
		contentType = "text/javascript; charset=utf-8"
	case strings.HasSuffix(name, ".css"):
		contentType = "text/css; charset=utf-8"
	}
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}
}

func (s *Server) parseWindow(r *http.Request) (time.Duration, string, error) {
	w := r.URL.Query().Get("window")
	if w == "" {
		w = "5m"
	}
	allowed := s.windows()
	if slices.Contains(allowed, w) {
		return windowDuration(w), w, nil
	}
	return 0, "", fmt.Errorf("window: %q is not one of %s (the history holds %s)", w, strings.Join(allowed, ", "), s.history.Span())
}

// RouteJSON is one row of GET /api/routes. Durations are milliseconds.
type RouteJSON struct {
	Service           string  `json:"service"`
	Environment       string  `json:"environment"`
	Method            string  `json:"method"`
	Route             string  `json:"route"`
	Requests          uint64  `json:"requests"`
	RequestsPerMinute float64 `json:"requests_per_minute"`
	Errors            uint64  `json:"errors"`
	ErrorRate         float64 `json:"error_rate"`
	P50Ms             float64 `json:"p50_ms"`
	P95Ms             float64 `json:"p95_ms"`
	P99Ms             float64 `json:"p99_ms"`
	MaxMs             float64 `json:"max_ms"`
	// Impact is the route's share of its service's (and environment's) total request time in the window.
	Impact    float64 `json:"impact"`
	JaegerURL string  `json:"jaeger_url,omitempty"`
	// Previous window of the same length, when the history covers it: requests and p99.
	PrevRequests *uint64  `json:"prev_requests,omitempty"`
	PrevP99Ms    *float64 `json:"prev_p99_ms,omitempty"`
	// SparkRequests and SparkP99Ms are per slice of the window (the response's slices), null without traffic.
	SparkRequests []*uint64  `json:"spark_requests,omitempty"`
	SparkP99Ms    []*float64 `json:"spark_p99_ms,omitempty"`
	// Undocumented: the service has OpenAPI documents (routes.openapi) and none of them has this route.
	Undocumented bool `json:"undocumented,omitempty"`
	// CatchAll marks {unmatched} and {overflow}: many requests, no one endpoint.
	CatchAll bool `json:"catch_all,omitempty"`
	// Guessed: templated from raw paths, not declared by the service.
	Guessed bool `json:"guessed,omitempty"`
	// Junk: catch-all, or guessed with fewer than 5 requests in the window; listed after every other route.
	Junk bool `json:"junk,omitempty"`
}

func (s *Server) apiRoutes(w http.ResponseWriter, r *http.Request) {
	window, name, err := s.parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	service, env, scope := q.Get("service"), q.Get("environment"), q.Get("scope")
	if scope != "" && scope != "replica" && scope != "fleet" {
		http.Error(w, fmt.Sprintf("scope: %q is not replica or fleet", scope), http.StatusBadRequest)
		return
	}
	now := s.now()
	windows, covered := s.history.Windows(window, now)
	var peers []PeerStatus
	if scope == "fleet" {
		if !s.opts.Peers.enabled() {
			http.Error(w, "scope=fleet: no peers configured (dashboard.peers or dashboard.peers_dns)", http.StatusBadRequest)
			return
		}
		windows, covered, peers = s.opts.Peers.fleetWindows(r.Context(), s.opts.Instance, name, windows, covered)
	}
	selected := func(k RouteKey) bool {
		return (service == "" || k.Service == service) && (env == "" || k.Environment == env)
	}
	// Impact is a share of the service's time in its environment: the denominator is per (service, environment).
	type svcEnv struct{ service, env string }
	totalTime := map[svcEnv]float64{}
	for _, rw := range windows {
		totalTime[svcEnv{rw.Service, rw.Environment}] += rw.SumSeconds
	}
	// The previous window and the sparklines are this replica's own (the fleet merges whole windows only).
	var previous map[RouteKey]RouteSummary
	slices := s.sliceStarts(window, now)
	if scope != "fleet" {
		if prevWindows, prevCovered := s.history.Windows(window, now.Add(-window)); prevCovered >= window {
			previous = map[RouteKey]RouteSummary{}
			for _, sum := range Summarize(prevWindows, prevCovered) {
				previous[sum.RouteKey] = sum
			}
		}
	}
	rows := []RouteJSON{}
	for _, sum := range Summarize(windows, covered) {
		if !selected(sum.RouteKey) {
			continue
		}
		row := RouteJSON{
			Service: sum.Service, Environment: sum.Environment, Method: sum.Method, Route: sum.Route,
			Requests: sum.Requests, RequestsPerMinute: sum.RequestsPerMinute, Errors: sum.Errors, ErrorRate: sum.ErrorRate,
			P50Ms: millis(sum.P50), P95Ms: millis(sum.P95), P99Ms: millis(sum.P99), MaxMs: millis(sum.Max),
			JaegerURL: s.jaegerSearch(sum.Service, sum.Route, sum.P99, now.Add(-window), now),
			CatchAll:  isCatchAll(sum.Route),
		}
		if t := totalTime[svcEnv{sum.Service, sum.Environment}]; t > 0 {
			row.Impact = sum.SumSeconds / t
		}
		if s.opts.Routes != nil {
			row.Undocumented = s.opts.Routes.Undocumented(sum.Service, sum.Route)
			row.Guessed = s.opts.Routes.Guessed(sum.Service, sum.Route)
		}
		row.Junk = row.CatchAll || (row.Guessed && sum.Requests < lowTraffic)
		if prev, ok := previous[sum.RouteKey]; ok || previous != nil {
			requests, p99 := prev.Requests, millis(prev.P99)
			row.PrevRequests = &requests
			if ok {
				row.PrevP99Ms = &p99
			}
		}
		if scope != "fleet" {
			row.SparkRequests, row.SparkP99Ms = s.sparklines(sum.RouteKey, window, now, slices)
		}
		rows = append(rows, row)
	}
	// Declared routes first, by impact; then the junk, busiest first.
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].Junk != rows[j].Junk {
			return !rows[i].Junk
		}
		if rows[i].Junk {
			return rows[i].Requests > rows[j].Requests
		}
		return rows[i].Impact > rows[j].Impact
	})
	body := s.freshness(window, name, covered)
	body["scope"], body["instance"], body["fleet"], body["routes"] = "replica", s.opts.Instance, s.opts.Peers.enabled(), rows
	body["slices"] = slices
	if scope == "fleet" {
		body["scope"], body["peers"] = "fleet", peers
	}
	writeJSON(w, body)
}

// freshness is what every answer says about its data: the window, how much of it the history covers, when it last
// changed and how often it changes.
func (s *Server) freshness(window time.Duration, name string, covered time.Duration) map[string]any {
	body := map[string]any{
		"window": name, "window_seconds": window.Seconds(), "covered_seconds": covered.Seconds(),
		"slice_seconds": s.history.SliceFor(window).Seconds(), "flush_seconds": s.opts.FlushInterval.Seconds(),
		"windows": s.windows(),
		"now":     s.now(),
	}
	if u := s.history.Updated(); !u.IsZero() {
		body["updated"] = u
	}
	return body
}

// sliceStarts lists the starts of the window's slices, oldest first.
func (s *Server) sliceStarts(window time.Duration, now time.Time) []time.Time {
	slice := s.history.SliceFor(window)
	var out []time.Time
	for t := now.Add(-window).Truncate(slice); t.Before(now); t = t.Add(slice) {
		out = append(out, t)
	}
	return out
}

func (s *Server) sparklines(key RouteKey, window time.Duration, now time.Time, starts []time.Time) ([]*uint64, []*float64) {
	d := s.history.QueryRoute(key, window, now)
	requests, p99 := make([]*uint64, len(starts)), make([]*float64, len(starts))
	at := map[time.Time]int{}
	for i, t := range starts {
		at[t] = i
	}
	for _, p := range d.Points {
		if i, ok := at[p.Start]; ok {
			n, v := p.Requests, millis(p.P99)
			requests[i], p99[i] = &n, &v
		}
	}
	return requests, p99
}

// PointJSON is one slice of GET /api/series.
type PointJSON struct {
	Start    time.Time         `json:"start"`
	Requests uint64            `json:"requests"`
	Errors   uint64            `json:"errors"`
	P50Ms    float64           `json:"p50_ms"`
	P95Ms    float64           `json:"p95_ms"`
	P99Ms    float64           `json:"p99_ms"`
	Status   map[string]uint64 `json:"status"`
	// BreakdownMs is the mean time per request of each category (self, db, http, rpc, messaging, internal) over the
	// BreakdownRequests requests whose breakdown was recorded in the slice; they add up to their mean latency.
	BreakdownRequests uint64             `json:"breakdown_requests"`
	BreakdownMs       map[string]float64 `json:"breakdown_ms,omitempty"`
	// Heatmap counts the slice's requests per bucket of the response's distribution, in its order.
	Heatmap []uint64 `json:"heatmap"`
}

// BreakdownRowJSON is one part (category and target) or statement of a route's breakdown over the window.
type BreakdownRowJSON struct {
	Category     string  `json:"category"`
	Target       string  `json:"target"`
	RequestShare float64 `json:"request_share"` // of the requests, those that touched it
	TimeShare    float64 `json:"time_share"`    // of the requests' time, its own
	Calls        uint64  `json:"calls"`
	CallsMean    float64 `json:"calls_per_request"`
	CallsP95     float64 `json:"calls_per_request_p95"`
	P50Ms        float64 `json:"p50_ms"` // time per touching request
	P95Ms        float64 `json:"p95_ms"`
	P99Ms        float64 `json:"p99_ms"`
}

// BucketJSON is one bar of the latency distribution: requests whose latency is in [lower, upper).
type BucketJSON struct {
	LowerMs float64 `json:"lower_ms"`
	UpperMs float64 `json:"upper_ms"`
	Count   uint64  `json:"count"`
}

// SlowJSON is one of the slowest requests of the window, with a link to its trace.
type SlowJSON struct {
	TraceID    string    `json:"trace_id"`
	SpanID     string    `json:"span_id"`
	DurationMs float64   `json:"duration_ms"`
	Time       time.Time `json:"time"`
	JaegerURL  string    `json:"jaeger_url,omitempty"`
}

// apiSeries is a service's (and environment's) routes merged, or one route: per slice, the window's summary, the
// latency distribution, the slowest requests and the previous window's figures.
func (s *Server) apiSeries(w http.ResponseWriter, r *http.Request) {
	window, name, err := s.parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	service, env, method, route := q.Get("service"), q.Get("environment"), q.Get("method"), q.Get("route")
	if service == "" || (route == "") != (method == "") {
		http.Error(w, "service is required; method and route go together", http.StatusBadRequest)
		return
	}
	match := func(k RouteKey) bool {
		return k.Service == service && (env == "" || k.Environment == env) && (route == "" || (k.Method == method && k.Route == route))
	}
	now := s.now()
	d := s.history.Query(match, window, now)
	sum := summarize(d.Window, d.Covered)
	points := make([]PointJSON, 0, len(d.Points))
	var classes StatusClasses
	for _, p := range d.Points {
		pj := PointJSON{Start: p.Start, Requests: p.Requests, Errors: p.Errors,
			P50Ms: millis(p.P50), P95Ms: millis(p.P95), P99Ms: millis(p.P99), Status: classNames(p.Classes),
			BreakdownRequests: p.BreakdownRequests}
		if p.BreakdownRequests > 0 {
			pj.BreakdownMs = map[string]float64{}
			for c, n := range p.BreakdownNanos {
				pj.BreakdownMs[c] = float64(n) / 1e6 / float64(p.BreakdownRequests)
			}
		}
		points = append(points, pj)
		for c, n := range p.Classes {
			classes[c] += n
		}
	}
	slowest := make([]SlowJSON, 0, len(d.Slowest))
	for _, e := range d.Slowest {
		slowest = append(slowest, SlowJSON{TraceID: e.TraceID, SpanID: e.SpanID, DurationMs: millis(e.Seconds), Time: e.At,
			JaegerURL: s.jaegerTrace(e.TraceID)})
	}
	dist, first := distribution(d.Window)
	if len(dist) > 0 {
		for i, p := range d.Points {
			points[i].Heatmap = make([]uint64, len(dist))
			for k, n := range p.Latency {
				if j := k - first; j >= 0 && j < len(dist) {
					points[i].Heatmap[j] += uint64(math.Round(n))
				}
			}
		}
	}
	body := s.freshness(window, name, d.Covered)
	body["points"], body["distribution"], body["slowest"] = points, dist, slowest
	markers := []VersionMarker{}
	if s.opts.Versions != nil {
		for _, m := range s.opts.Versions.Markers(ServiceKey{service, env}) {
			if m.At.After(now.Add(-window)) && !m.At.After(now) {
				markers = append(markers, m)
			}
		}
	}
	body["versions"] = markers
	body["summary"] = map[string]any{
		"requests": sum.Requests, "errors": sum.Errors, "error_rate": sum.ErrorRate,
		"requests_per_minute": sum.RequestsPerMinute, "p50_ms": millis(sum.P50), "p95_ms": millis(sum.P95),
		"p99_ms": millis(sum.P99), "max_ms": millis(sum.Max), "status": classNames(classes),
	}
	if route != "" {
		body["breakdown"] = s.breakdownJSON(d.Breakdown)
		body["jaeger_url"] = s.jaegerSearch(service, route, sum.P99, now.Add(-window), now)
		body["undocumented"] = s.opts.Routes != nil && s.opts.Routes.Undocumented(service, route)
	}
	if prev := s.history.Query(match, window, now.Add(-window)); prev.Covered >= window {
		ps := summarize(prev.Window, prev.Covered)
		body["previous"] = map[string]any{"requests": ps.Requests, "errors": ps.Errors, "p50_ms": millis(ps.P50),
			"p95_ms": millis(ps.P95), "p99_ms": millis(ps.P99)}
	}
	writeJSON(w, body)
}

// breakdownJSON is a route's breakdown over the window: its parts and statements heaviest first, and its N+1s.
func (s *Server) breakdownJSON(t *breakdown.Totals) map[string]any {
	rows := func(in []breakdown.Row) []BreakdownRowJSON {
		out := make([]BreakdownRowJSON, 0, len(in))
		for _, r := range in {
			out = append(out, BreakdownRowJSON{Category: r.Category, Target: r.Target, RequestShare: r.RequestShare,
				TimeShare: r.TimeShare, Calls: r.Calls, CallsMean: r.CallsMean, CallsP95: r.CallsP95,
				P50Ms: millis(r.P50), P95Ms: millis(r.P95), P99Ms: millis(r.P99)})
		}
		return out
	}
	np := t.NPlusOne
	examples := make([]map[string]string, 0, len(np.Examples))
	for _, id := range np.Examples {
		examples = append(examples, map[string]string{"trace_id": id, "jaeger_url": s.jaegerTrace(id)})
	}
	statement, flaggedBy := "", uint64(0)
	for st, n := range np.Statements {
		if n > flaggedBy || n == flaggedBy && st < statement {
			statement, flaggedBy = st, n
		}
	}
	nPlusOne := map[string]any{"requests": np.Flagged, "share": 0.0, "statement": statement, "max_repeats": np.MaxRepeats, "examples": examples}
	if t.Requests > 0 {
		nPlusOne["share"] = float64(np.Flagged) / float64(t.Requests)
	}
	if np.Flagged > 0 {
		nPlusOne["repeats_p50"] = np.Repeats.Quantile(0.5)
	}
	return map[string]any{"requests": t.Requests, "parts": rows(t.PartRows()), "statements": rows(t.StatementRows()),
		"n_plus_one": nPlusOne, "async_spans": t.Async}
}

func classNames(c StatusClasses) map[string]uint64 {
	return map[string]uint64{"1xx": c[1], "2xx": c[2], "3xx": c[3], "4xx": c[4], "5xx": c[5], "other": c[0]}
}

// distribution buckets the window's sketch on a log scale, ten buckets per decade (BucketOf), from the first
// non-empty to the last: every request is in exactly one bucket, so the counts add up to the requests. first is the
// first bucket's BucketOf.
func distribution(rw RouteWindow) (buckets []BucketJSON, first int) {
	counts := map[int]float64{}
	rw.Sketch.ForEach(func(value, count float64) bool {
		counts[BucketOf(value)] += count
		return false
	})
	if len(counts) == 0 {
		return []BucketJSON{}, 0
	}
	lo, hi := math.MaxInt, math.MinInt
	for k := range counts {
		lo, hi = min(lo, k), max(hi, k)
	}
	out := make([]BucketJSON, 0, hi-lo+1)
	for k := lo; k <= hi; k++ {
		out = append(out, BucketJSON{LowerMs: 1e3 * math.Pow(10, float64(k)/10), UpperMs: 1e3 * math.Pow(10, float64(k+1)/10),
			Count: uint64(math.Round(counts[k]))})
	}
	return out, lo
}

// apiSketches serves this replica's routes over a window as mergeable sketches, for its peers' fleet view.
func (s *Server) apiSketches(w http.ResponseWriter, r *http.Request) {
	window, name, err := s.parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	routes, covered := s.history.Windows(window, s.now())
	writeJSON(w, encodeWindows(s.opts.Instance, name, routes, covered))
}

// isCatchAll reports a placeholder route ({unmatched}, {overflow}): real routes start with "/".
func isCatchAll(route string) bool { return !strings.HasPrefix(route, "/") }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// jaegerSearch links to Jaeger's search for the route's traces at or above p99, in the window shown (whole
// microseconds, rounded down, so that the p99 request itself is included).
func (s *Server) jaegerSearch(service, route string, p99 float64, from, to time.Time) string {
	if s.opts.JaegerUI == "" {
		return ""
	}
	tags, _ := json.Marshal(map[string]string{semconv.HTTPRoute: route})
	q := url.Values{
		"service":     {service},
		"tags":        {string(tags)},
		"minDuration": {fmt.Sprintf("%dus", int64(math.Floor(p99*1e6)))},
		"lookback":    {"custom"},
		"start":       {fmt.Sprint(from.UnixMicro())},
		"end":         {fmt.Sprint(to.UnixMicro())},
		"limit":       {"20"},
	}
	return s.opts.JaegerUI + "/search?" + q.Encode()
}

func (s *Server) jaegerTrace(traceID string) string {
	if s.opts.JaegerUI == "" || traceID == "" {
		return ""
	}
	return s.opts.JaegerUI + "/trace/" + traceID
}

// millis converts to milliseconds, unrounded: a sub-millisecond route keeps the sketch's 1 % in the API (the page
// rounds for display).
func millis(seconds float64) float64 { return seconds * 1e3 }
