package route

import (
	"strings"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Attribute keys read from request spans: current semantic conventions first, then the legacy ones that older
// instrumentations (and many FastAPI setups) still emit.
const (
	AttrHTTPRoute = semconv.HTTPRoute
	// AttrRouteGuessed marks an http.route that the routelatency processor guessed from a raw path (true), so that
	// the connector downstream keeps it in the guessed routes' budget instead of taking it for a declared route.
	AttrRouteGuessed = semconv.HTTPRouteGuessed
	// AttrRouteUnmatched marks a request the routelatency processor found unmatched (true), so that the connector
	// downstream counts it under UnmatchedRoute without resolving it again.
	AttrRouteUnmatched = semconv.HTTPRouteUnmatched
)

// MethodOther is the semantic-convention value for a method outside the known set, which keeps a flood of invented
// methods to one series.
const MethodOther = "_OTHER"

// canonicalMethod maps to constant strings so that callers never keep a reference into span memory.
func canonicalMethod(m string) string {
	switch m {
	case "GET", "get":
		return "GET"
	case "POST", "post":
		return "POST"
	case "PUT", "put":
		return "PUT"
	case "DELETE", "delete":
		return "DELETE"
	case "PATCH", "patch":
		return "PATCH"
	case "HEAD", "head":
		return "HEAD"
	case "OPTIONS", "options":
		return "OPTIONS"
	case "CONNECT", "connect":
		return "CONNECT"
	case "TRACE", "trace":
		return "TRACE"
	case "":
		return ""
	}
	return MethodOther
}

func stripQuery(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return p[:i]
	}
	return p
}

// pathOfURL returns the path of an absolute URL ("https://host:8080/a/b?c" -> "/a/b?c"), or "" when it has none.
func pathOfURL(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// spanNamePath splits a span name of the form "METHOD /path" and returns the path, or "" for any other name.
func spanNamePath(name string) string {
	_, p, ok := strings.Cut(name, " ")
	if !ok || !strings.HasPrefix(p, "/") || strings.IndexByte(p, ' ') >= 0 {
		return ""
	}
	return p
}

// NamedAfterRawRequest reports whether a span name carries no route template: the bare method, "HTTP METHOD", a
// raw path, or "METHOD /raw/path". Such names split one endpoint into a group per id in backends.
func NamedAfterRawRequest(name, method string) bool {
	if name == method || (strings.HasPrefix(name, "HTTP ") && name[len("HTTP "):] == method) {
		return true
	}
	if m, p, ok := strings.Cut(name, " "); ok && canonicalMethod(m) != MethodOther {
		name = p
	}
	return strings.HasPrefix(name, "/") && strings.IndexByte(name, '{') < 0
}
