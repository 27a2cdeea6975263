package route

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func newTestResolver(t testing.TB, mutate func(*Config)) *Resolver {
	t.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	require.NoError(t, cfg.Validate())
	r, err := NewResolver(cfg)
	require.NoError(t, err)
	return r
}

// testNow is the arrival time of the tests' batches unless they age routes.
var testNow = time.Unix(1_790_000_000, 0)

func resolve(r *Resolver, service string, span ptrace.Span) Result {
	return resolveAt(r, service, span, testNow)
}

func resolveAt(r *Resolver, service string, span ptrace.Span, now time.Time) Result {
	req := ReadRequest(span)
	return r.Resolve(service, &req, now)
}

func serverSpan(name string, attrs map[string]any) ptrace.Span {
	span := ptrace.NewSpan()
	span.SetKind(ptrace.SpanKindServer)
	span.SetName(name)
	if err := span.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
	return span
}

func TestRouteFromHTTPRouteWins(t *testing.T) {
	r := newTestResolver(t, nil)
	res := resolve(r, "svc", serverSpan("GET /items/42", map[string]any{"http.route": "/items/{item_id}", "url.path": "/items/42"}))
	assert.Equal(t, Result{Route: "/items/{item_id}", Source: SourceHTTPRoute}, res)
}

func TestRouteFromSpanNameTemplate(t *testing.T) {
	r := newTestResolver(t, nil)
	res := resolve(r, "svc", serverSpan("GET /users/{user_id}/orders", map[string]any{"url.path": "/users/7/orders"}))
	assert.Equal(t, "/users/{user_id}/orders", res.Route)
	assert.Equal(t, SourceSpanName, res.Source)
}

func TestRouteFromRawPathMatchesDeclaredTemplateFirst(t *testing.T) {
	r := newTestResolver(t, func(c *Config) {
		c.Templates = []string{"/users/{user_id}/orders/{order_id}", "/files/{file_path:path}", "/users/me"}
	})
	for path, want := range map[string]string{
		"/users/8812/orders/abc":       "/users/{user_id}/orders/{order_id}",
		"/files/a/b/c.txt":             "/files/{file_path:path}",
		"/users/me":                    "/users/me",
		"/users/8812/orders/abc/extra": "/users/{id}/orders/abc/extra", // no template matches: id rules
	} {
		res := resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": path}))
		assert.Equal(t, want, res.Route, path)
		assert.Equal(t, path, res.RawPath)
	}
}

func TestRouteFromRawPathTemplatesIDs(t *testing.T) {
	r := newTestResolver(t, nil)
	for path, want := range map[string]string{
		"/items/8812":  "/items/{id}",
		"/items/8812/": "/items/{id}/",
		"/orders/3f2b8c1e-9a4d-4e2f-8b1a-2c3d4e5f6a7b/lines": "/orders/{uuid}/lines",
		"/reports/2026-11-24":                                "/reports/{date}",
		"/events/01ARZ3NDEKTSV4RRFFQ69G5FAV":                 "/events/{ulid}",
		"/blobs/9f86d081884c7d659a2feaa0c55ad015":            "/blobs/{token}",
		"/sessions/dGhpcyBpcyBhIHNlY3JldDEyMw":               "/sessions/{token}",
		"/articles/annual-report-2024":                       "/articles/annual-report-2024",
		"/articles/getting-started-with-fastapi":             "/articles/getting-started-with-fastapi",
		"/health":                                            "/health",
		"/":                                                  "/",
		"/v1/items":                                          "/v1/items",
	} {
		res := resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": path}))
		assert.Equal(t, want, res.Route, path)
		assert.Equal(t, SourceIDRules, res.Source, path)
		assert.True(t, res.Guessed, path)
	}
}

func TestRouteFromLegacyAttributesDropsQuery(t *testing.T) {
	r := newTestResolver(t, nil)
	cases := []map[string]any{
		{"http.target": "/items/12?verbose=1#top"},
		{"url.full": "https://shop.example:8443/items/12?verbose=1"},
		{"http.url": "http://shop/items/12"},
	}
	for _, attrs := range cases {
		res := resolve(r, "svc", serverSpan("GET", attrs))
		assert.Equal(t, "/items/{id}", res.Route, attrs)
	}
	res := resolve(r, "svc", serverSpan("GET /items/12?x=1", nil))
	assert.Equal(t, "/items/{id}", res.Route, "raw path in the span name")
}

func TestRouteNoneWithoutHTTPAttributes(t *testing.T) {
	r := newTestResolver(t, nil)
	res := resolve(r, "svc", serverSpan("grpc.health.v1.Health/Check", map[string]any{"rpc.system": "grpc"}))
	assert.Equal(t, SourceNone, res.Source)
	assert.Empty(t, res.Route)
}

func TestRouteCapPerServiceOverflows(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.MaxGuessedRoutesPerService = 3 })
	for i := range 10 {
		res := resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": fmt.Sprintf("/page-%c", 'a'+i)}))
		if i < 3 {
			assert.Equal(t, SourceIDRules, res.Source)
		} else {
			assert.Equal(t, Result{Route: OverflowRoute, Source: SourceOverflow, RawPath: res.RawPath}, res)
		}
	}
	// A route already held keeps resolving; another service has its own budget.
	assert.Equal(t, "/page-a", resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": "/page-a"})).Route)
	assert.Equal(t, "/page-z", resolve(r, "other", serverSpan("GET", map[string]any{"url.path": "/page-z"})).Route)
	assert.Equal(t, 4, r.Tracked())
}

func TestServiceCapOverflows(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.MaxServices = 2 })
	for i := range 5 {
		res := resolve(r, fmt.Sprintf("svc-%d", i), serverSpan("GET", map[string]any{"url.path": "/x"}))
		if i < 2 {
			assert.Equal(t, "/x", res.Route)
		} else {
			assert.Equal(t, SourceOverflow, res.Source)
		}
	}
}

func TestRouteHugePathIsTruncated(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.MaxPathLength = 64 })
	huge := "/a/" + strings.Repeat("b", 4<<20)
	res := resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": huge}))
	assert.True(t, res.Truncated)
	assert.LessOrEqual(t, len(res.Route), 64)
	assert.True(t, strings.HasPrefix(res.Route, "/a/bbbb"))

	// Ids expand ("/1" -> "/{id}"); the stored route is still bounded.
	res = resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": strings.Repeat("/1", 32)}))
	assert.LessOrEqual(t, len(res.Route), 64)
}

func TestRouteInvalidUTF8IsReplaced(t *testing.T) {
	r := newTestResolver(t, nil)
	res := resolve(r, "svc", serverSpan("GET", map[string]any{"url.path": "/caf\xe9/menu"}))
	assert.Equal(t, "/caf\uFFFD/menu", res.Route)
	res = resolve(r, "svc", serverSpan("GET", map[string]any{"http.route": "/bad\xff"}))
	assert.Equal(t, "/bad\uFFFD", res.Route)
}

func TestRequestSpanKinds(t *testing.T) {
	r := newTestResolver(t, nil)
	span := serverSpan("GET", nil)
	assert.True(t, r.IsRequest(span))
	span.SetKind(ptrace.SpanKindClient)
	assert.False(t, r.IsRequest(span))

	r = newTestResolver(t, func(c *Config) { c.SpanKinds = []string{"server", "CONSUMER"} })
	span.SetKind(ptrace.SpanKindConsumer)
	assert.True(t, r.IsRequest(span))
}

func TestMillionDistinctPathsStayBounded(t *testing.T) {
	r := newTestResolver(t, nil)
	span := serverSpan("GET", map[string]any{"url.path": ""})
	overflowed := 0
	for i := range 1_000_000 {
		span.Attributes().PutStr("url.path", fmt.Sprintf("/search/q%dx", i)) // no id rule applies
		if resolve(r, "svc", span).Source == SourceOverflow {
			overflowed++
		}
	}
	assert.Equal(t, 100, r.Tracked())
	assert.Equal(t, 1_000_000-100, overflowed)
}

func TestResolveDoesNotAllocateForKnownRoutes(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.Templates = []string{"/users/{user_id}"} })
	spans := []ptrace.Span{
		serverSpan("GET", map[string]any{"http.route": "/items/{item_id}"}),
		serverSpan("GET", map[string]any{"url.path": "/orders/991/lines"}),
		serverSpan("GET", map[string]any{"url.path": "/users/42"}),
	}
	for _, s := range spans {
		resolve(r, "svc", s)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, s := range spans {
			resolve(r, "svc", s)
		}
	})
	assert.Zero(t, allocs)
}

func get404(path string) ptrace.Span {
	return serverSpan("GET", map[string]any{"url.path": path, "http.response.status_code": int64(404)})
}

// A scanner's flood of raw paths can fill the guessed routes, never the declared ones.
func TestScannerNeverDisplacesDeclaredRoutes(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.Unmatched = UnmatchedGuess })
	for i := range 10_000 {
		resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": fmt.Sprintf("/x%dq.php", i), "http.response.status_code": int64(404)}))
	}
	for i := range 400 {
		route := fmt.Sprintf("/declared/%d/{x}", i)
		res := resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": route}))
		assert.Equal(t, Result{Route: route, Source: SourceHTTPRoute}, res)
	}
}

func TestUnmatchedRequestsAreOneRoute(t *testing.T) {
	r := newTestResolver(t, nil)
	// Before the service has declared a route, a 404 is templated like any raw path: nothing says it is junk.
	assert.Equal(t, "/early.php", resolve(r, "shop", get404("/early.php")).Route)

	resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/items/{item_id}"}))
	for _, path := range []string{"/wp-login.php", "/.env", "/admin/8812"} {
		assert.Equal(t, Result{Route: UnmatchedRoute, Source: SourceUnmatched, RawPath: path}, resolve(r, "shop", get404(path)))
	}
	res := resolve(r, "shop", serverSpan("POST", map[string]any{"url.path": "/items", "http.response.status_code": "405"}))
	assert.Equal(t, UnmatchedRoute, res.Route)
	// A 404 on a declared route stays on it (an item that does not exist), and other statuses are templated.
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/items/{item_id}", "http.response.status_code": int64(404)}))
	assert.Equal(t, "/items/{item_id}", res.Route)
	assert.Equal(t, "/static/{id}", resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": "/static/1", "http.response.status_code": int64(200)})).Route)
	// Another service that declares nothing keeps the old behaviour.
	assert.Equal(t, "/wp-login.php", resolve(r, "legacy", get404("/wp-login.php")).Route)

	// Configured templates declare routes for every service; unmatched: guess turns grouping off.
	r = newTestResolver(t, func(c *Config) { c.Templates = []string{"/items/{item_id}"} })
	assert.Equal(t, UnmatchedRoute, resolve(r, "any", get404("/wp-login.php")).Route)
	r = newTestResolver(t, func(c *Config) { c.Templates = []string{"/items/{item_id}"}; c.Unmatched = UnmatchedGuess })
	assert.Equal(t, "/wp-login.php", resolve(r, "any", get404("/wp-login.php")).Route)
}

func TestGuessedRoutesAgeOut(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.MaxGuessedRoutesPerService = 10; c.GuessedRouteIdle = time.Minute })
	at := func(d time.Duration, path string) Result {
		return resolveAt(r, "shop", serverSpan("GET", map[string]any{"url.path": path}), testNow.Add(d))
	}
	// A route seen often, then a burst of one-off paths fills the rest and overflows.
	for range 5 {
		at(0, "/orders/7")
	}
	for i := range 100 {
		at(time.Second, fmt.Sprintf("/scan-%d", i))
	}
	assert.Equal(t, 10, r.Tracked())
	assert.Equal(t, OverflowRoute, at(2*time.Second, "/new-route").Route)

	// One-off paths leave after a tenth of the idle time; the route seen five times keeps its slot until the full idle.
	assert.Equal(t, "/new-route", at(8*time.Second, "/new-route").Route)
	assert.Equal(t, 2, r.Tracked(), "/orders/{id} and /new-route")
	assert.Equal(t, "/orders/{id}", at(9*time.Second, "/orders/8").Route)
	// Past the full idle time, the next insertion into a full table drops /orders/{id} too.
	for i := range 20 {
		at(80*time.Second, fmt.Sprintf("/later-%d", i))
	}
	assert.Equal(t, 10, r.Tracked())
	assert.Equal(t, OverflowRoute, at(80*time.Second, "/orders/9").Route, "its slot went to a later path")
}

func TestGuessedMarkKeepsAnUpstreamGuessInTheGuessedBudget(t *testing.T) {
	r := newTestResolver(t, func(c *Config) { c.MaxGuessedRoutesPerService = 1; c.MaxRoutesPerService = 1 })
	res := resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/a/{id}", AttrRouteGuessed: true}))
	assert.Equal(t, Result{Route: "/a/{id}", Source: SourceHTTPRoute, Guessed: true}, res)
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/b/{id}", AttrRouteGuessed: true}))
	assert.Equal(t, SourceOverflow, res.Source)
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/declared"}))
	assert.Equal(t, Result{Route: "/declared", Source: SourceHTTPRoute}, res)
	// An upstream processor's unmatched mark stays {unmatched}, whatever the budgets' fill.
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": "/wp-login.php", "http.response.status_code": 404, AttrRouteUnmatched: true}))
	assert.Equal(t, Result{Route: UnmatchedRoute, Source: SourceUnmatched}, res)
}

// Services that stop sending and guessed routes that go idle are let go by the periodic sweep, with no table full:
// a gateway whose services come and go keeps a flat route table (the soak, docs/reliability.md).
func TestIdleServicesAndGuessedRoutesAreLetGoWithoutPressure(t *testing.T) {
	cfg := DefaultConfig()
	cfg.GuessedRouteIdle = time.Minute
	cfg.ServiceIdle = 5 * time.Minute
	r, err := NewResolver(cfg)
	require.NoError(t, err)
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r.Resolve("gone", &Request{Method: "GET", Route: "/items/{id}"}, start)
	r.Resolve("gone", &Request{Method: "GET", Path: "/reports/8812/export", StatusCode: 200}, start)
	assert.True(t, r.Guessed("gone", "/reports/{id}/export"))
	assert.Equal(t, 2, r.Tracked())

	// Another service keeps sending, a span a minute; "gone" sends nothing more.
	for m := 1; m <= 6; m++ {
		now := start.Add(time.Duration(m) * time.Minute)
		r.Resolve("busy", &Request{Method: "GET", Route: "/orders"}, now)
		switch m {
		case 2:
			assert.False(t, r.Guessed("gone", "/reports/{id}/export"), "a guessed route idle past guessed_route_idle leaves")
			assert.Equal(t, 2, r.Tracked(), "gone's declared route and busy's")
		case 6:
			assert.Equal(t, 1, r.Tracked(), "a service idle past service_idle leaves with its routes")
		}
	}
	// It comes back: its routes come back with its traffic.
	res := r.Resolve("gone", &Request{Method: "GET", Route: "/items/{id}"}, start.Add(7*time.Minute))
	assert.Equal(t, "/items/{id}", res.Route)
	assert.Equal(t, 2, r.Tracked())
}
