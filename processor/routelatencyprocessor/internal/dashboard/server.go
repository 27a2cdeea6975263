package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.New("").ParseFS(templates, "templates/*.html"))

// Windows are the periods the page offers; the API takes any of them.
var Windows = []string{"1m", "5m", "15m", "1h"}

// Server serves the page and the JSON API from a History.
type Server struct {
	history     *History
	jaegerUI    string
	bearerToken string
	// undocumented tells the routes outside the service's OpenAPI documents; nil when none are configured.
	undocumented func(service, route string) bool
	// instance is this replica's service.instance.id; peers (nil without a fleet) are the other replicas.
	instance string
	peers    *Peers
	now      func() time.Time
	server   *http.Server
}

// NewServer builds the handlers; jaegerUI (may be empty) is the Jaeger UI's base URL for "slow traces" links;
// undocumented (may be nil) reports a route that its service's OpenAPI documents do not have.
// instance is this replica's service.instance.id and peers (may be nil) the fleet it can show.
func NewServer(history *History, jaegerUI, bearerToken string, undocumented func(service, route string) bool, instance string, peers *Peers) *Server {
	s := &Server{history: history, jaegerUI: strings.TrimSuffix(jaegerUI, "/"), bearerToken: bearerToken,
		undocumented: undocumented, instance: instance, peers: peers, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /route", s.routePage)
	mux.HandleFunc("GET /api/routes", s.apiRoutes)
	mux.HandleFunc("GET /api/routes/series", s.apiSeries)
	mux.HandleFunc("GET /api/sketches", s.apiSketches)
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
	if s.bearerToken == "" {
		return next
	}
	want := []byte("Bearer " + s.bearerToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func parseWindow(r *http.Request) (time.Duration, string, error) {
	w := r.URL.Query().Get("window")
	if w == "" {
		w = "5m"
	}
	for _, allowed := range Windows {
		if w == allowed {
			d, _ := time.ParseDuration(w)
			return d, w, nil
		}
	}
	return 0, "", fmt.Errorf("window: %q is not one of %s", w, strings.Join(Windows, ", "))
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
	JaegerURL         string  `json:"jaeger_url,omitempty"`
	// Undocumented: the service has OpenAPI documents (routes.openapi) and none of them has this route.
	Undocumented bool `json:"undocumented,omitempty"`
	// CatchAll marks {unmatched} and {overflow}: many requests, no one endpoint; listed after the real routes.
	CatchAll bool `json:"catch_all,omitempty"`
}

func (s *Server) apiRoutes(w http.ResponseWriter, r *http.Request) {
	window, name, err := parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	service, env := r.URL.Query().Get("service"), r.URL.Query().Get("environment")
	scope := r.URL.Query().Get("scope")
	if scope != "" && scope != "replica" && scope != "fleet" {
		http.Error(w, fmt.Sprintf("scope: %q is not replica or fleet", scope), http.StatusBadRequest)
		return
	}
	windows, covered := s.history.Windows(window, s.now())
	var peers []PeerStatus
	if scope == "fleet" {
		if !s.peers.enabled() {
			http.Error(w, "scope=fleet: no peers configured (dashboard.peers or dashboard.peers_dns)", http.StatusBadRequest)
			return
		}
		windows, covered, peers = s.peers.fleetWindows(r.Context(), s.instance, name, windows, covered)
	}
	rows := []RouteJSON{}
	for _, sum := range Summarize(windows, covered) {
		if (service != "" && sum.Service != service) || (env != "" && sum.Environment != env) {
			continue
		}
		rows = append(rows, RouteJSON{
			Service: sum.Service, Environment: sum.Environment, Method: sum.Method, Route: sum.Route,
			Requests: sum.Requests, RequestsPerMinute: sum.RequestsPerMinute, Errors: sum.Errors, ErrorRate: sum.ErrorRate,
			P50Ms: millis(sum.P50), P95Ms: millis(sum.P95), P99Ms: millis(sum.P99), MaxMs: millis(sum.Max),
			JaegerURL:    s.jaegerURL(sum.RouteKey, sum.P99),
			Undocumented: s.undocumented != nil && s.undocumented(sum.Service, sum.Route),
			CatchAll:     isCatchAll(sum.Route),
		})
	}
	body := map[string]any{"window": name, "scope": "replica", "instance": s.instance, "fleet": s.peers.enabled(), "routes": rows}
	if scope == "fleet" {
		body["scope"], body["peers"] = "fleet", peers
	}
	writeJSON(w, body)
}

// apiSketches serves this replica's routes over a window as mergeable sketches, for its peers' fleet view.
func (s *Server) apiSketches(w http.ResponseWriter, r *http.Request) {
	window, name, err := parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	routes, covered := s.history.Windows(window, s.now())
	writeJSON(w, encodeWindows(s.instance, name, routes, covered))
}

// isCatchAll reports a placeholder route ({unmatched}, {overflow}): real routes start with "/".
func isCatchAll(route string) bool { return !strings.HasPrefix(route, "/") }

// PointJSON is one slice of GET /api/routes/series.
type PointJSON struct {
	Start    time.Time `json:"start"`
	Requests uint64    `json:"requests"`
	Errors   uint64    `json:"errors"`
	P50Ms    float64   `json:"p50_ms"`
	P95Ms    float64   `json:"p95_ms"`
	P99Ms    float64   `json:"p99_ms"`
}

func (s *Server) apiSeries(w http.ResponseWriter, r *http.Request) {
	window, name, err := parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key, err := routeKey(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	points := []PointJSON{}
	for _, p := range s.history.Series(key, window, s.now()) {
		points = append(points, PointJSON{Start: p.Start, Requests: p.Requests, Errors: p.Errors, P50Ms: millis(p.P50), P95Ms: millis(p.P95), P99Ms: millis(p.P99)})
	}
	writeJSON(w, map[string]any{"window": name, "slice_seconds": s.history.SliceDuration().Seconds(), "points": points})
}

func routeKey(r *http.Request) (RouteKey, error) {
	q := r.URL.Query()
	k := RouteKey{Service: q.Get("service"), Environment: q.Get("environment"), Method: q.Get("method"), Route: q.Get("route")}
	if k.Service == "" || k.Method == "" || k.Route == "" {
		return k, errors.New("service, method and route are required")
	}
	return k, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// jaegerURL links to Jaeger's search for the route's traces at or above its p99 (whole milliseconds, rounded down).
func (s *Server) jaegerURL(k RouteKey, p99 float64) string {
	if s.jaegerUI == "" {
		return ""
	}
	tags, _ := json.Marshal(map[string]string{semconv.HTTPRoute: k.Route})
	q := url.Values{
		"service":     {k.Service},
		"tags":        {string(tags)},
		"minDuration": {fmt.Sprintf("%dms", int64(math.Floor(millis(p99))))},
		"lookback":    {"1h"},
		"limit":       {"20"},
	}
	return s.jaegerUI + "/search?" + q.Encode()
}

// millis converts to milliseconds, unrounded: a sub-millisecond route keeps the sketch's 1 % in the API (the page
// rounds for display).
func millis(seconds float64) float64 { return seconds * 1e3 }

func (s *Server) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "index.html", map[string]any{"Windows": Windows})
}

func (s *Server) routePage(w http.ResponseWriter, r *http.Request) {
	window, name, err := parseWindow(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key, err := routeKey(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := s.now()
	points := s.history.Series(key, window, now)
	slice := s.history.SliceDuration()
	a := axis{from: now.Add(-window).Truncate(slice), width: window + slice, slice: slice}
	var p99 float64
	for _, sum := range s.history.Summaries(window, now) {
		if sum.RouteKey == key {
			p99 = sum.P99
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pages.ExecuteTemplate(w, "route.html", map[string]any{
		"Key": key, "Window": name, "Windows": Windows, "Query": r.URL.Query(),
		"Latency": latencyChart(points, a), "Counts": countChart(points, a),
		"JaegerURL": s.jaegerURL(key, p99), "Points": points,
	})
}
