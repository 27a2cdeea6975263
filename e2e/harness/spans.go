package harness

import (
	"crypto/rand"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Request describes one HTTP server span to build.
type Request struct {
	Service, Environment string
	Method, Path, Route  string // Route empty: the span carries only the raw path, as a 404 or a bare ASGI app does
	Status               int64
	Duration             time.Duration
}

// Traces builds one resource per distinct (service, environment) and one server span per request; it returns the
// trace ids in request order.
func Traces(reqs ...Request) (ptrace.Traces, []pcommon.TraceID) {
	td := ptrace.NewTraces()
	resources := map[[2]string]ptrace.SpanSlice{}
	ids := make([]pcommon.TraceID, 0, len(reqs))
	end := time.Now()
	for _, r := range reqs {
		key := [2]string{r.Service, r.Environment}
		spans, ok := resources[key]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", r.Service)
			if r.Environment != "" {
				rs.Resource().Attributes().PutStr("deployment.environment.name", r.Environment)
			}
			spans = rs.ScopeSpans().AppendEmpty().Spans()
			resources[key] = spans
		}
		span := spans.AppendEmpty()
		var tid pcommon.TraceID
		var sid pcommon.SpanID
		_, _ = rand.Read(tid[:])
		_, _ = rand.Read(sid[:])
		span.SetTraceID(tid)
		span.SetSpanID(sid)
		span.SetKind(ptrace.SpanKindServer)
		span.SetName(r.Method + " " + r.Path)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-r.Duration)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		a := span.Attributes()
		a.PutStr("http.request.method", r.Method)
		a.PutStr("url.path", r.Path)
		if r.Route != "" {
			a.PutStr("http.route", r.Route)
		}
		a.PutInt("http.response.status_code", r.Status)
		if r.Status >= 500 {
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		ids = append(ids, tid)
	}
	return td, ids
}
