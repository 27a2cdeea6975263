package route

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/fastapi-shop-openapi.json is what FastAPI serves at /openapi.json for examples/fastapi/shop.py
// (make openapi-testdata).
func TestOpenAPIDocumentTemplatesRawPaths(t *testing.T) {
	r := newTestResolver(t, func(c *Config) {
		c.OpenAPI = []OpenAPIDocument{{File: "testdata/fastapi-shop-openapi.json", Service: "shop"}}
	})
	for path, want := range map[string]string{
		"/items/8812":     "/items/{item_id}",
		"/items/featured": "/items/featured", // declared before /items/{item_id}: FastAPI matches it first
		"/users/3f2b8c1e-9a4d-4e2f-8b1a-2c3d4e5f6a7b/orders/91": "/users/{user_id}/orders/{order_id}",
		"/checkout":       "/checkout",
		"/health":         "/health",
		"/files/logo.png": "/files/{file_path}",
	} {
		res := resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": path}))
		assert.Equal(t, want, res.Route, path)
		assert.Equal(t, SourceTemplate, res.Source, path)
		assert.False(t, res.Undocumented, path)
	}
	// OpenAPI cannot say that {file_path:path} takes slashes: FastAPI writes /files/{file_path}, so deeper paths fall
	// to the id rules and are reported as undocumented (declare "/files/{file_path:path}" in routes.templates).
	res := resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": "/files/img/logo.png"}))
	assert.Equal(t, Result{Route: "/files/img/logo.png", Source: SourceIDRules, RawPath: "/files/img/logo.png", Guessed: true, Undocumented: true}, res)

	// Another service does not get the shop's document.
	res = resolve(r, "billing", serverSpan("GET", map[string]any{"url.path": "/items/8812"}))
	assert.Equal(t, "/items/{id}", res.Route)
	assert.False(t, res.Undocumented)

	// Traffic outside the document is reported, whether the app named the route or the id rules guessed it.
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"url.path": "/internal/debug/7"}))
	assert.Equal(t, Result{Route: "/internal/debug/{id}", Source: SourceIDRules, RawPath: "/internal/debug/7", Guessed: true, Undocumented: true}, res)
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/admin/{x}"}))
	assert.True(t, res.Undocumented)
	res = resolve(r, "shop", serverSpan("GET", map[string]any{"http.route": "/items/{item_id}"}))
	assert.False(t, res.Undocumented)
	assert.True(t, r.Undocumented("shop", "/admin/{x}"))
	assert.False(t, r.Undocumented("billing", "/admin/{x}"))
	// A service with a document of its own declares routes: its 404s without a route are unmatched.
	assert.Equal(t, UnmatchedRoute, resolve(r, "shop", get404("/wp-login.php")).Route)
}

func TestPartialParameterSegmentsOfOpenAPI(t *testing.T) {
	paths, err := parseOpenAPIPaths([]byte("openapi: 3.1.0\npaths:\n  /reports/{name}.csv: {}\n  /reports/{name}: {}\n"))
	require.NoError(t, err)
	set := newTemplateSet()
	for _, p := range paths {
		set.add(p)
	}
	got, ok := set.match("/reports/q3.csv")
	assert.True(t, ok)
	assert.Equal(t, "/reports/{name}.csv", got, "a partial parameter segment matches any segment; the first declared wins")
}

func TestOpenAPIValidationNamesFileAndProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OpenAPI = []OpenAPIDocument{
		{File: "testdata/fastapi-shop-openapi.json"},
		{File: "testdata/malformed-openapi.json"},
		{File: "testdata/not-openapi.yaml"},
		{File: "testdata/missing.json"},
		{},
	}
	err := cfg.Validate()
	require.Error(t, err)
	msg := err.Error()
	for _, want := range []string{
		"routes.openapi[1].file: testdata/malformed-openapi.json: not JSON or YAML",
		`routes.openapi[2].file: testdata/not-openapi.yaml: not an OpenAPI 3.x document`,
		"routes.openapi[3].file: testdata/missing.json: open testdata/missing.json: no such file or directory",
		"routes.openapi[4].file: must name an OpenAPI document",
	} {
		assert.Contains(t, msg, want)
	}
	assert.NotContains(t, msg, "routes.openapi[0]")

	_, err = parseOpenAPIPaths([]byte(`{"openapi": "3.0.0", "paths": {"/ok": {}, "items/{id}": {}}}`))
	require.EqualError(t, err, `paths: template "items/{id}" must start with /`)
}

// A spec of 10,000 paths loads in bounded time and memory, and matching stays a walk of the path's depth.
func TestHugeOpenAPIDocumentLoadsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"openapi":"3.0.3","paths":{`)
	for i := range 10_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"/api/v%d/resource%d/{id}/sub%d":{"get":{"responses":{"200":{"description":"ok"}}}}`, i%7, i, i%13)
	}
	b.WriteString(`}}`)
	file := filepath.Join(t.TempDir(), "huge.json")
	require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	r := newTestResolver(t, func(c *Config) { c.OpenAPI = []OpenAPIDocument{{File: file}} })
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	retained := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("10,000 paths (%d KiB): validated and loaded in %s, %d KiB retained", b.Len()>>10, took, retained>>10)
	assert.Less(t, took, 10*time.Second)
	assert.Less(t, retained, int64(64<<20))

	res := resolve(r, "any", serverSpan("GET", map[string]any{"url.path": "/api/v3/resource9999/abc/sub2"}))
	assert.Equal(t, Result{Route: "/api/v3/resource9999/{id}/sub2", Source: SourceTemplate, RawPath: "/api/v3/resource9999/abc/sub2"}, res)
	res = resolve(r, "any", serverSpan("GET", map[string]any{"url.path": "/api/v4/resource9999/abc/sub2"}))
	assert.Equal(t, SourceIDRules, res.Source, "v4 is not resource9999's version: no template")
	assert.True(t, res.Undocumented)
}
