package route

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReadRequestPrefersCurrentKeys(t *testing.T) {
	for _, tc := range []struct {
		name  string
		attrs map[string]any
		want  Request
	}{
		{"GET", map[string]any{"http.method": "post", "http.request.method": "GET", "http.status_code": "404", "http.response.status_code": int64(200), "http.target": "/a?x=1", "url.path": "/b"},
			Request{Name: "GET", Method: "GET", StatusCode: 200, Path: "/b"}},
		{"x", map[string]any{"http.url": "http://h/legacy", "url.full": "https://h:8443/full?q#f", "http.status_code": "503", "http.method": "delete"},
			Request{Name: "x", Method: "DELETE", StatusCode: 503, Path: "/full"}},
		{"PATCH /raw/1", map[string]any{"http.target": "/t", "http.url": "http://h/u", "http.route": "/r/{id}", "http.route.guessed": true, "http.response.status_code": 201.0},
			Request{Name: "PATCH /raw/1", Method: "PATCH", StatusCode: 201, Route: "/r/{id}", RouteGuessed: true}}, // with a route, the path is not read
		{"HTTP GET", map[string]any{"http.response.status_code": "20x"}, Request{Name: "HTTP GET"}},
		{"BREW /pot", map[string]any{"http.request.method": "BREW"}, Request{Name: "BREW /pot", Method: MethodOther}},
	} {
		assert.Equal(t, tc.want, ReadRequest(serverSpan(tc.name, tc.attrs)), tc.name)
	}
}

func TestReadRequestDoesNotAllocate(t *testing.T) {
	span := serverSpan("GET", map[string]any{"http.request.method": "GET", "url.path": "/items/1", "http.response.status_code": int64(200), "user_agent.original": "x"})
	assert.Zero(t, testing.AllocsPerRun(1000, func() { ReadRequest(span) }))
}
