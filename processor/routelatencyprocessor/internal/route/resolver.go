package route

import (
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Source says where a span's route came from.
type Source uint8

const (
	// SourceNone: the span is not an HTTP request the resolver understands; it has no route.
	SourceNone Source = iota
	// SourceHTTPRoute: the application set http.route.
	SourceHTTPRoute
	// SourceSpanName: the span name has the form "METHOD /template".
	SourceSpanName
	// SourceTemplate: a declared template matched the raw path.
	SourceTemplate
	// SourceIDRules: the built-in id rules templated the raw path.
	SourceIDRules
	// SourceOverflow: a cap was reached; the route is OverflowRoute.
	SourceOverflow
)

// Result is a resolved route. Route is an interned string owned by the resolver, safe to keep.
type Result struct {
	Route  string
	Source Source
	// RawPath is the request path the route was made from ("" for SourceHTTPRoute and SourceSpanName); it points
	// into the span and must not be kept.
	RawPath string
	// Truncated is set when the raw path was longer than max_path_length.
	Truncated bool
}

// Resolver maps request spans to routes. Distinct routes are capped per service and services are capped, so memory
// is bounded by MaxServices x MaxRoutesPerService x MaxPathLength whatever arrives. Safe for concurrent use.
type Resolver struct {
	templates   []template
	kinds       uint8
	maxRoutes   int
	maxServices int
	maxPathLen  int

	mu       sync.Mutex
	services map[string]*serviceRoutes
	buf      []byte
}

// serviceRoutes maps each route to itself, so that a lookup hands back the resolver's copy.
type serviceRoutes struct {
	routes map[string]string
}

// NewResolver builds a resolver from a validated config.
func NewResolver(cfg Config) (*Resolver, error) {
	templates, err := parseTemplates(cfg.Templates)
	if err != nil {
		return nil, err
	}
	return &Resolver{
		templates:   templates,
		kinds:       cfg.spanKindSet(),
		maxRoutes:   cfg.MaxRoutesPerService,
		maxServices: cfg.MaxServices,
		maxPathLen:  cfg.MaxPathLength,
		services:    make(map[string]*serviceRoutes),
		buf:         make([]byte, 0, cfg.MaxPathLength),
	}, nil
}

// IsRequest reports whether the span's kind is one of the configured request kinds.
func (r *Resolver) IsRequest(span ptrace.Span) bool {
	return r.kinds&(1<<span.Kind()) != 0
}

// Resolve returns the route of a request span of the given service.
func (r *Resolver) Resolve(service string, span ptrace.Span) Result {
	attrs := span.Attributes()
	if v, ok := attrs.Get(AttrHTTPRoute); ok && v.Str() != "" {
		return r.intern(service, v.Str(), Result{Source: SourceHTTPRoute})
	}
	namePath := spanNamePath(span.Name())
	if strings.IndexByte(namePath, '{') >= 0 {
		return r.intern(service, namePath, Result{Source: SourceSpanName})
	}
	path := rawPath(attrs)
	if path == "" {
		path = stripQuery(namePath)
	}
	if path == "" {
		return Result{Source: SourceNone}
	}
	res := Result{RawPath: path}
	if len(path) > r.maxPathLen {
		path, res.Truncated = path[:r.maxPathLen], true
	}
	for i := range r.templates {
		if r.templates[i].matches(path) {
			res.Source = SourceTemplate
			return r.intern(service, r.templates[i].route, res)
		}
	}
	res.Source = SourceIDRules
	return r.internTemplated(service, path, res)
}

// internTemplated applies the id rules segment by segment into the resolver's buffer, then interns the result.
func (r *Resolver) internTemplated(service, path string, res Result) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf := r.buf[:0]
	for rest := path; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if ph := idPlaceholder(seg); ph != "" {
			buf = append(buf, ph...)
		} else {
			buf = append(buf, seg...)
		}
		if !more {
			break
		}
		buf = append(buf, '/')
		rest = tail
	}
	r.buf = buf
	return r.internLocked(service, r.bound(buf), res)
}

// bound makes a route valid UTF-8 (invalid bytes become U+FFFD, which may lengthen it) and then at most maxPathLen
// bytes, cut at a rune boundary.
func (r *Resolver) bound(route []byte) []byte {
	if !utf8.Valid(route) {
		route = []byte(strings.ToValidUTF8(string(route), "\uFFFD"))
	}
	if len(route) <= r.maxPathLen {
		return route
	}
	cut := r.maxPathLen
	for cut > 0 && !utf8.RuneStart(route[cut]) {
		cut--
	}
	return route[:cut]
}

func (r *Resolver) intern(service, route string, res Result) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(route) > r.maxPathLen {
		route, res.Truncated = route[:min(len(route), r.maxPathLen+utf8.UTFMax)], true // bound() cuts at a rune boundary
	}
	r.buf = append(r.buf[:0], route...)
	return r.internLocked(service, r.bound(r.buf), res)
}

// internLocked returns the resolver's own copy of route, or OverflowRoute past a cap. The lookups convert the byte
// slice without allocating; only a new route allocates.
func (r *Resolver) internLocked(service string, route []byte, res Result) Result {
	svc, ok := r.services[service]
	if !ok {
		if len(r.services) >= r.maxServices {
			res.Route, res.Source = OverflowRoute, SourceOverflow
			return res
		}
		svc = &serviceRoutes{routes: make(map[string]string)}
		r.services[strings.Clone(service)] = svc
	}
	if interned, ok := svc.routes[string(route)]; ok {
		res.Route = interned
		return res
	}
	if len(svc.routes) >= r.maxRoutes {
		res.Route, res.Source = OverflowRoute, SourceOverflow
		return res
	}
	interned := string(route)
	svc.routes[interned] = interned
	res.Route = interned
	return res
}

// Tracked returns the number of distinct routes held, over all services.
func (r *Resolver) Tracked() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, svc := range r.services {
		n += len(svc.routes)
	}
	return n
}
