package dashboard

import (
	"net/http"
	"time"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"
)

// maxErrorGroupsShown bounds a service's list (a route lists all of its groups, which are bounded already).
const maxErrorGroupsShown = 20

// ErrorGroupJSON is one error group of /api/errors.
type ErrorGroupJSON struct {
	Service      string     `json:"service"`
	Environment  string     `json:"environment"`
	Method       string     `json:"method"`
	Route        string     `json:"route"`
	Fingerprint  string     `json:"fingerprint"`
	Type         string     `json:"type"`
	Shape        string     `json:"shape"`
	TopFrame     string     `json:"top_frame"`
	Count        uint64     `json:"count"`
	Failed       uint64     `json:"failed"`
	Handled      uint64     `json:"handled"`
	Share        float64    `json:"share"`
	FirstSeen    time.Time  `json:"first_seen"`
	LastSeen     time.Time  `json:"last_seen"`
	FirstVersion string     `json:"first_version"`
	New          bool       `json:"new"`
	Message      string     `json:"example_message"`
	Stacktrace   string     `json:"example_stacktrace"`
	Examples     []SlowJSON `json:"examples"`
}

// apiErrors serves the error groups of a service (busiest first, at most 20) or, with method and route, of one
// route (all of them).
func (s *Server) apiErrors(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	service, env, method, route := q.Get("service"), q.Get("environment"), q.Get("method"), q.Get("route")
	out := []ErrorGroupJSON{}
	if s.opts.Errors != nil {
		views := s.opts.Errors.List(func(k errorgroups.RouteKey) bool {
			return k.Service == service && (env == "" || k.Environment == env) && (route == "" || k.Method == method && k.Route == route)
		})
		if route == "" && len(views) > maxErrorGroupsShown {
			views = views[:maxErrorGroupsShown]
		}
		for _, v := range views {
			g := ErrorGroupJSON{Service: v.Route.Service, Environment: v.Route.Environment, Method: v.Route.Method, Route: v.Route.Route,
				Fingerprint: v.Fingerprint, Type: v.Type, Shape: v.Shape, TopFrame: v.TopFrame, Count: v.Count, Failed: v.Failed,
				Handled: v.Handled, Share: v.Share, FirstSeen: v.FirstSeen, LastSeen: v.LastSeen, FirstVersion: v.FirstVersion, New: v.New,
				Message: v.ExampleMessage, Stacktrace: v.ExampleStacktrace, Examples: []SlowJSON{}}
			for _, id := range v.ExampleTraceIDs {
				g.Examples = append(g.Examples, SlowJSON{TraceID: id, JaegerURL: s.jaegerTrace(id)})
			}
			out = append(out, g)
		}
	}
	writeJSON(w, map[string]any{"groups": out})
}
