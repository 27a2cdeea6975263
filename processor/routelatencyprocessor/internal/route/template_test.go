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

func TestTemplateMatching(t *testing.T) {
	tpl, err := parseTemplate("/users/{user_id}/orders/{order_id}")
	require.NoError(t, err)
	assert.True(t, tpl.matches("/users/1/orders/2"))
	assert.False(t, tpl.matches("/users/1/orders"))
	assert.False(t, tpl.matches("/users/1/orders/2/3"))
	assert.False(t, tpl.matches("/users//orders/2"))
	assert.False(t, tpl.matches("users/1/orders/2"))

	root, err := parseTemplate("/")
	require.NoError(t, err)
	assert.True(t, root.matches("/"))
	assert.False(t, root.matches("/x"))

	tail, err := parseTemplate("/static/{rest:path}")
	require.NoError(t, err)
	assert.True(t, tail.matches("/static/css/site.css"))
	assert.False(t, tail.matches("/static/"))
	assert.False(t, tail.matches("/static"))
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
