package route

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/semconv"
)

// Request is what a request span says about its HTTP target, read in one pass over its attributes. Its strings
// point into the span: they must not be kept (Method is a constant).
type Request struct {
	Name string
	// Route is http.route as the span carries it; RouteGuessed its http.route.guessed mark.
	Route        string
	RouteGuessed bool
	// Unmatched is the http.route.unmatched mark of an upstream routelatency processor (read without http.route).
	Unmatched bool
	// Method is canonical (constant strings), "" when the span has none.
	Method string
	// StatusCode is the HTTP response status code, 0 when the span has none.
	StatusCode int64
	// Path is the raw request path without query string or fragment, "" when the span has none.
	Path string
}

// ReadRequest reads the span's HTTP attributes once, current semantic-convention keys before legacy ones. (A single
// pass over the attribute list was tried: with the handful of attributes a server span has, the direct lookups are
// faster.)
func ReadRequest(span ptrace.Span) Request {
	attrs := span.Attributes()
	req := Request{Name: span.Name()}
	if v, ok := attrs.Get(semconv.HTTPRoute); ok {
		req.Route = v.Str()
		if g, ok := attrs.Get(semconv.HTTPRouteGuessed); ok {
			req.RouteGuessed = g.Bool()
		}
	}
	if v, ok := attrs.Get(semconv.HTTPRequestMethod); ok {
		req.Method = canonicalMethod(v.Str())
	} else if v, ok := attrs.Get(semconv.HTTPMethodLegacy); ok {
		req.Method = canonicalMethod(v.Str())
	} else if m, _, ok := strings.Cut(req.Name, " "); ok {
		if c := canonicalMethod(m); c != MethodOther {
			req.Method = c
		}
	}
	if v, ok := attrs.Get(semconv.HTTPResponseStatusCode); ok {
		req.StatusCode = statusCode(v)
	} else if v, ok := attrs.Get(semconv.HTTPStatusCodeLegacy); ok {
		req.StatusCode = statusCode(v)
	}
	if req.Route == "" { // the path and the unmatched mark only matter without a route
		if u, ok := attrs.Get(semconv.HTTPRouteUnmatched); ok && u.Bool() {
			req.Unmatched = true
			return req
		}
		req.Path = rawPath(attrs)
	}
	return req
}

// rawPath returns the request path without query string or fragment, from the first attribute that has one.
func rawPath(attrs pcommon.Map) string {
	if v, ok := attrs.Get(semconv.URLPath); ok {
		return stripQuery(v.Str())
	}
	if v, ok := attrs.Get(semconv.HTTPTargetLegacy); ok {
		return stripQuery(v.Str())
	}
	for _, key := range [...]string{semconv.URLFull, semconv.HTTPURLLegacy} {
		if v, ok := attrs.Get(key); ok {
			return stripQuery(pathOfURL(v.Str()))
		}
	}
	return ""
}

func statusCode(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeStr:
		s := v.Str()
		if len(s) != 3 || !isDigits(s) {
			return 0
		}
		return int64(s[0]-'0')*100 + int64(s[1]-'0')*10 + int64(s[2]-'0')
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	}
	return 0
}
