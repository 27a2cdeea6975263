package route

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTemplateValidationNamesTheKey(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Templates = []string{"/ok/{id}", "items/{id}", "/a/{}", "/b/x{id}", "/c/{p:path}/tail"}
	cfg.SpanKinds = []string{"SERVER", "SERVR"}
	cfg.MaxRoutesPerService = 0
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{
		"routes.templates[1]", "must start with /",
		"routes.templates[2]", "has no name",
		"routes.templates[3]", "must be a literal or a whole {parameter}",
		"routes.templates[4]", "must be the last segment",
		"routes.span_kinds[1]", `"SERVR"`,
		"routes.max_routes_per_service",
	} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "routes.templates[0]")
}

func templates(t *testing.T, list ...string) *templateSet {
	t.Helper()
	set := newTemplateSet()
	for _, s := range list {
		tpl, err := parseTemplate(s, false)
		require.NoError(t, err)
		set.add(tpl)
	}
	return set
}

func TestTemplateMatching(t *testing.T) {
	set := templates(t, "/users/{user_id}/orders/{order_id}")
	for path, want := range map[string]bool{
		"/users/1/orders/2":   true,
		"/users/1/orders":     false,
		"/users/1/orders/2/3": false,
		"/users//orders/2":    false,
		"users/1/orders/2":    false,
	} {
		_, ok := set.match(path)
		assert.Equal(t, want, ok, path)
	}
	root := templates(t, "/")
	_, ok := root.match("/")
	assert.True(t, ok)
	_, ok = root.match("/x")
	assert.False(t, ok)

	tail := templates(t, "/static/{rest:path}")
	for path, want := range map[string]bool{"/static/css/site.css": true, "/static/": false, "/static": false} {
		_, ok := tail.match(path)
		assert.Equal(t, want, ok, path)
	}
}

func TestFirstDeclaredTemplateWins(t *testing.T) {
	// Starlette matches routes in declaration order: /users/{user_id} declared before /users/me takes /users/me.
	set := templates(t, "/users/{user_id}", "/users/me", "/users/me/{rest:path}", "/users/{user_id}/{rest:path}")
	for path, want := range map[string]string{
		"/users/me":        "/users/{user_id}",
		"/users/42":        "/users/{user_id}",
		"/users/me/avatar": "/users/me/{rest:path}",
		"/users/42/avatar": "/users/{user_id}/{rest:path}",
		"/users/42/a/b/c":  "/users/{user_id}/{rest:path}",
	} {
		got, ok := set.match(path)
		assert.True(t, ok, path)
		assert.Equal(t, want, got, path)
	}
	set = templates(t, "/users/me", "/users/{user_id}")
	got, _ := set.match("/users/me")
	assert.Equal(t, "/users/me", got)
}

func TestNamedAfterRawRequest(t *testing.T) {
	for name, want := range map[string]bool{
		"GET":                 true,
		"HTTP GET":            true,
		"/items/8812":         true,
		"GET /items/8812":     true,
		"GET /items/{id}":     false,
		"checkout":            false,
		"POST /users/me":      true,
		"SELECT * FROM users": false,
	} {
		assert.Equal(t, want, NamedAfterRawRequest(name, "GET") || NamedAfterRawRequest(name, "POST"), name)
	}
}
