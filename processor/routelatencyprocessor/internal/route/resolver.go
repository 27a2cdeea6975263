package route

import (
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Source says where a span's route came from. The order of the constants is the order the rules are tried.
type Source uint8

const (
	// SourceNone: the span is not an HTTP request the resolver understands; it has no route.
	SourceNone Source = iota
	// SourceHTTPRoute: the application set http.route.
	SourceHTTPRoute
	// SourceSpanName: the span name has the form "METHOD /template".
	SourceSpanName
	// SourceTemplate: a declared template (routes.templates, then the service's OpenAPI documents) matched the raw
	// path.
	SourceTemplate
	// SourceUnmatched: a 404 or 405 without a route, of a service that declares routes; the route is UnmatchedRoute.
	SourceUnmatched
	// SourceIDRules: the built-in id rules templated the raw path (a guessed route).
	SourceIDRules
	// SourceOverflow: a cap was reached; the route is OverflowRoute.
	SourceOverflow
)

// Result is a resolved route. Route is an interned string owned by the resolver, safe to keep.
type Result struct {
	Route  string
	Source Source
	// RawPath is the request path the route was made from ("" when the route came from http.route or the span
	// name); it points into the span and must not be kept.
	RawPath string
	// Truncated is set when the raw path was longer than max_path_length.
	Truncated bool
	// Guessed is set for a route the id rules made from a raw path, here or (SourceHTTPRoute with AttrRouteGuessed)
	// in an upstream routelatency processor.
	Guessed bool
	// Undocumented is set when the service has OpenAPI documents and none of them has this route.
	Undocumented bool
}

// Resolver maps request spans to routes. Declared routes are capped per service, guessed routes have a cap of their
// own and leave when idle, and services are capped, so memory is bounded by MaxServices x (MaxRoutesPerService +
// MaxGuessedRoutesPerService) x MaxPathLength whatever arrives. Safe for concurrent use: a route already known is
// found without a lock (the maps are copied on write and swapped atomically; a new route is rare, a lookup is not).
type Resolver struct {
	// Declared templates, read only after NewResolver.
	templates      *templateSet            // routes.templates, for every service
	sharedDocs     *templateSet            // OpenAPI documents without a service, nil for none
	docs           map[string]*templateSet // OpenAPI documents of one service
	groupUnmatched bool
	// declaredForAll: routes.templates or a shared OpenAPI document declare routes for every service.
	declaredForAll bool
	kinds          uint8
	maxDeclared    int
	maxGuessed     int
	idle           int64 // seconds
	serviceIdle    int64 // seconds
	maxServices    int
	maxPathLen     int

	mu       sync.Mutex // serialises writers
	services atomic.Pointer[map[string]*serviceRoutes]
	// nextSweep is when (Unix seconds) idle guessed routes and idle services are next let go, whatever the tables'
	// fill: without it, routes that stop would stay until a full table needed their slots.
	nextSweep atomic.Int64
}

type serviceRoutes struct {
	// declared maps each route to itself, so that a lookup hands back the resolver's copy.
	declared atomic.Pointer[map[string]string]
	guessed  atomic.Pointer[map[string]*guessedRoute]
	// declares is set once the service is known to state its own routes (http.route, a templated span name, a
	// declared template or an OpenAPI document of its own); only then is a 404 without a route "unmatched".
	declares  atomic.Bool
	nextSweep int64 // under Resolver.mu
	// lastSeen is the last second (Unix) the service had a route resolved; written at most once a second.
	lastSeen atomic.Int64
}

// guessedRoute is shared by readers: its fields change atomically, and only when they would change (seconds, and
// hits up to 2), so that a busy route's cache line is not written by every core on every span.
type guessedRoute struct {
	route    string
	lastSeen atomic.Int64 // Unix seconds
	seenOnce atomic.Bool  // seen exactly once so far
}

// NewResolver builds a resolver from a validated config, reading its OpenAPI documents.
func NewResolver(cfg Config) (*Resolver, error) {
	r := &Resolver{
		templates:      newTemplateSet(),
		docs:           map[string]*templateSet{},
		groupUnmatched: cfg.Unmatched != UnmatchedGuess,
		kinds:          cfg.spanKindSet(),
		maxDeclared:    cfg.MaxRoutesPerService,
		maxGuessed:     cfg.MaxGuessedRoutesPerService,
		idle:           int64(cfg.GuessedRouteIdle / time.Second),
		serviceIdle:    int64(cfg.ServiceIdle / time.Second),
		maxServices:    cfg.MaxServices,
		maxPathLen:     cfg.MaxPathLength,
	}
	r.services.Store(&map[string]*serviceRoutes{})
	for i, s := range cfg.Templates {
		t, err := parseTemplate(s, false)
		if err != nil {
			return nil, fmt.Errorf("routes.templates[%d]: %w", i, err)
		}
		r.templates.add(t)
	}
	for i, d := range cfg.OpenAPI {
		paths, err := loadOpenAPIPaths(d.File)
		if err != nil {
			return nil, fmt.Errorf("routes.openapi[%d].file: %s: %w", i, d.File, err)
		}
		set := r.sharedDocs
		if d.Service != "" {
			set = r.docs[d.Service]
		}
		if set == nil {
			set = newTemplateSet()
		}
		for _, t := range paths {
			set.add(t)
		}
		if d.Service != "" {
			r.docs[d.Service] = set
		} else {
			r.sharedDocs = set
		}
	}
	r.declaredForAll = r.templates.len() > 0 || r.sharedDocs != nil
	return r, nil
}

// IsRequest reports whether the span's kind is one of the configured request kinds.
func (r *Resolver) IsRequest(span ptrace.Span) bool {
	return r.kinds&(1<<span.Kind()) != 0
}

// Resolve returns the route of a request span of the given service; now is when its batch arrived (it ages guessed
// routes). The rules, first that applies wins:
//  1. http.route as the application set it, or as an upstream routelatency processor wrote it (AttrRouteGuessed
//     telling a guessed route, which stays in the guessed budget, from a declared one); an upstream processor's
//     AttrRouteUnmatched mark is UnmatchedRoute;
//  2. a span name "METHOD /template" with a {parameter};
//  3. the raw path matched by routes.templates, then by the service's OpenAPI documents, then by shared ones;
//  4. a 404 or 405 of a service that declares routes: UnmatchedRoute;
//  5. the raw path through the id rules: a guessed route;
//  6. past a cap: OverflowRoute.
func (r *Resolver) Resolve(service string, req *Request, now time.Time) Result {
	if sec := now.Unix(); sec >= r.nextSweep.Load() {
		r.sweepAll(sec)
	}
	if req.Unmatched {
		return Result{Route: UnmatchedRoute, Source: SourceUnmatched}
	}
	if route := req.Route; route != "" {
		if req.RouteGuessed {
			return r.internGuessed(service, unsafeBytes(route), Result{Source: SourceHTTPRoute, Guessed: true}, now)
		}
		return r.internDeclared(service, route, Result{Source: SourceHTTPRoute}, now.Unix())
	}
	namePath := spanNamePath(req.Name)
	if strings.IndexByte(namePath, '{') >= 0 {
		return r.internDeclared(service, namePath, Result{Source: SourceSpanName}, now.Unix())
	}
	path := req.Path
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
	if route, ok := r.templates.match(path); ok {
		res.Source = SourceTemplate
		return r.internDeclared(service, route, res, now.Unix())
	}
	if len(r.docs) > 0 {
		if route, ok := r.docs[service].match(path); ok {
			res.Source = SourceTemplate
			return r.internDeclared(service, route, res, now.Unix())
		}
	}
	if route, ok := r.sharedDocs.match(path); ok {
		res.Source = SourceTemplate
		return r.internDeclared(service, route, res, now.Unix())
	}
	if r.groupUnmatched {
		if code := req.StatusCode; (code == 404 || code == 405) && r.declares(service) {
			res.Route, res.Source = UnmatchedRoute, SourceUnmatched
			return res
		}
	}
	res.Source, res.Guessed = SourceIDRules, true
	return r.internTemplated(service, path, res, now)
}

func (r *Resolver) declares(service string) bool {
	if r.declaredForAll || (len(r.docs) > 0 && r.docs[service] != nil) {
		return true
	}
	svc := (*r.services.Load())[service]
	return svc != nil && svc.declares.Load()
}

// internTemplated applies the id rules segment by segment into a buffer on the stack, then interns the result.
func (r *Resolver) internTemplated(service, path string, res Result, now time.Time) Result {
	var stack [256]byte
	buf := stack[:0]
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
	return r.internGuessedBytes(service, r.bound(buf), res, now.Unix())
}

func (r *Resolver) internGuessed(service string, route []byte, res Result, now time.Time) Result {
	if len(route) > r.maxPathLen {
		route, res.Truncated = route[:min(len(route), r.maxPathLen+utf8.UTFMax)], true // bound() cuts at a rune boundary
	}
	return r.internGuessedBytes(service, r.bound(route), res, now.Unix())
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

func (r *Resolver) internDeclared(service, route string, res Result, now int64) Result {
	if len(route) > r.maxPathLen {
		route, res.Truncated = route[:min(len(route), r.maxPathLen+utf8.UTFMax)], true // bound() cuts at a rune boundary
	}
	bounded := r.bound(unsafeBytes(route))
	svc := r.service(service, now)
	if svc == nil {
		res.Route, res.Source = OverflowRoute, SourceOverflow
		return res
	}
	if (res.Source == SourceHTTPRoute || res.Source == SourceSpanName) && !svc.declares.Load() {
		svc.declares.Store(true)
	}
	interned, ok := (*svc.declared.Load())[string(bounded)]
	if !ok {
		if interned, ok = r.addDeclared(svc, bounded); !ok {
			res.Route, res.Source = OverflowRoute, SourceOverflow
			return res
		}
	}
	res.Route = interned
	res.Undocumented = r.Undocumented(service, interned)
	return res
}

// addDeclared copies the service's declared routes with one more, unless the budget is spent.
func (r *Resolver) addDeclared(svc *serviceRoutes, route []byte) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *svc.declared.Load()
	if interned, ok := old[string(route)]; ok {
		return interned, true
	}
	if len(old) >= r.maxDeclared {
		return "", false
	}
	next := maps.Clone(old)
	interned := string(route)
	next[interned] = interned
	svc.declared.Store(&next)
	return interned, true
}

// internGuessedBytes returns the resolver's copy of a guessed route, or OverflowRoute when the service's guessed
// routes are all taken even after the idle ones leave. now is in Unix seconds.
func (r *Resolver) internGuessedBytes(service string, route []byte, res Result, now int64) Result {
	svc := r.service(service, now)
	if svc == nil {
		res.Route, res.Source, res.Guessed = OverflowRoute, SourceOverflow, false
		return res
	}
	g, ok := (*svc.guessed.Load())[string(route)]
	if ok {
		if g.lastSeen.Load() < now {
			g.lastSeen.Store(now)
		}
		if g.seenOnce.Load() {
			g.seenOnce.Store(false)
		}
	} else if g = r.addGuessed(svc, route, now); g == nil {
		res.Route, res.Source, res.Guessed = OverflowRoute, SourceOverflow, false
		return res
	}
	res.Route = g.route
	res.Undocumented = r.Undocumented(service, g.route)
	return res
}

// addGuessed copies the service's guessed routes with one more, after letting the idle ones go when the budget is
// spent; nil when it stays spent.
func (r *Resolver) addGuessed(svc *serviceRoutes, route []byte, now int64) *guessedRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *svc.guessed.Load()
	if g, ok := old[string(route)]; ok {
		return g
	}
	next := old
	if len(old) >= r.maxGuessed {
		next = r.sweepLocked(svc, old, now)
		if len(next) >= r.maxGuessed {
			return nil
		}
	}
	if len(next) == len(old) { // not swept: copy
		next = maps.Clone(old)
	}
	g := &guessedRoute{route: string(route)}
	g.lastSeen.Store(now)
	g.seenOnce.Store(true)
	next[g.route] = g
	svc.guessed.Store(&next)
	return g
}

// sweepLocked returns the guessed routes without those idle for GuessedRouteIdle and those seen once and idle for a
// tenth of it (a scanner's one-off paths); it sweeps at most once a second per service and returns old otherwise.
func (r *Resolver) sweepLocked(svc *serviceRoutes, old map[string]*guessedRoute, now int64) map[string]*guessedRoute {
	if now < svc.nextSweep {
		return old
	}
	svc.nextSweep = now + 1
	kept := make(map[string]*guessedRoute, len(old))
	for k, g := range old {
		idle := now - g.lastSeen.Load()
		if idle >= r.idle || (g.seenOnce.Load() && idle >= r.idle/10) {
			continue
		}
		kept[k] = g
	}
	if len(kept) == len(old) {
		return old
	}
	return kept
}

// service returns the service's routes, or nil past max_services, and notes that it was seen at now (seconds).
func (r *Resolver) service(service string, now int64) *serviceRoutes {
	if svc, ok := (*r.services.Load())[service]; ok {
		if svc.lastSeen.Load() < now {
			svc.lastSeen.Store(now)
		}
		return svc
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.services.Load()
	if svc, ok := old[service]; ok {
		return svc
	}
	if len(old) >= r.maxServices {
		return nil
	}
	svc := &serviceRoutes{}
	svc.lastSeen.Store(now)
	svc.declared.Store(&map[string]string{})
	svc.guessed.Store(&map[string]*guessedRoute{})
	next := maps.Clone(old)
	next[strings.Clone(service)] = svc
	r.services.Store(&next)
	return svc
}

// sweepAll lets go of every service idle for serviceIdle and of the idle guessed routes of the others; it runs at
// most every tenth of guessed_route_idle (and at least once a minute), from whichever span comes first.
func (r *Resolver) sweepAll(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now < r.nextSweep.Load() {
		return // another goroutine swept meanwhile
	}
	r.nextSweep.Store(now + min(max(r.idle/10, 1), 60))
	old := *r.services.Load()
	var next map[string]*serviceRoutes
	for name, svc := range old {
		if now-svc.lastSeen.Load() >= r.serviceIdle {
			if next == nil {
				next = maps.Clone(old)
			}
			delete(next, name)
			continue
		}
		guessed := *svc.guessed.Load()
		svc.nextSweep = 0
		if kept := r.sweepLocked(svc, guessed, now); len(kept) != len(guessed) {
			svc.guessed.Store(&kept)
		}
	}
	if next != nil {
		r.services.Store(&next)
	}
}

// unsafeBytes views a string's bytes without copying; they are only read.
func unsafeBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Tracked returns the number of distinct routes held, declared and guessed, over all services.
func (r *Resolver) Tracked() int {
	n := 0
	for _, svc := range *r.services.Load() {
		n += len(*svc.declared.Load()) + len(*svc.guessed.Load())
	}
	return n
}

// Guessed reports whether the service's route was templated from raw paths (and is still held), not declared.
func (r *Resolver) Guessed(service, route string) bool {
	svc := (*r.services.Load())[service]
	if svc == nil {
		return false
	}
	_, ok := (*svc.guessed.Load())[route]
	return ok
}

// Undocumented reports whether the service has OpenAPI documents and none of them has the route. The documents are
// read only after NewResolver: no lock.
func (r *Resolver) Undocumented(service, route string) bool {
	if (len(r.docs) == 0 && r.sharedDocs == nil) || route == OverflowRoute || route == UnmatchedRoute {
		return false
	}
	docs := r.docs[service]
	if docs == nil && r.sharedDocs == nil {
		return false
	}
	return !(docs != nil && docs.documents(route)) && !(r.sharedDocs != nil && r.sharedDocs.documents(route))
}
