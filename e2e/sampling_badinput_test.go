package e2e

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// sampledTrace builds spans of one trace: parent 0 is the root; a span whose parent is -1 has a parent that is never
// sent; failed spans have status Error.
type sampledSpan struct {
	name   string
	parent int // index of the parent span in the trace, -1 for a parent never sent, -2 for none (root)
	failed bool
}

func sampledTraces(service string, traceID pcommon.TraceID, spans ...sampledSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
	list := rs.ScopeSpans().AppendEmpty().Spans()
	ids := make([]pcommon.SpanID, len(spans))
	for i := range ids {
		_, _ = rand.Read(ids[i][:])
	}
	end := time.Now()
	for i, s := range spans {
		span := list.AppendEmpty()
		span.SetTraceID(traceID)
		span.SetSpanID(ids[i])
		switch {
		case s.parent >= 0:
			span.SetParentSpanID(ids[s.parent])
		case s.parent == -1:
			var missing pcommon.SpanID
			_, _ = rand.Read(missing[:])
			span.SetParentSpanID(missing)
		}
		span.SetKind(ptrace.SpanKindServer)
		span.SetName(s.name)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-5 * time.Millisecond)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		span.Attributes().PutStr("http.request.method", "GET")
		span.Attributes().PutStr("http.route", "/"+s.name)
		code := int64(200)
		if s.failed {
			code = 500
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		span.Attributes().PutInt("http.response.status_code", code)
	}
	return td
}

func newTraceID() pcommon.TraceID {
	var id pcommon.TraceID
	_, _ = rand.Read(id[:])
	return id
}

// TestSamplingOfAwkwardTraces: the tail sampler (at 0 %, so that only errors and slow requests are kept) with traces
// that do not arrive as one tidy batch. Each outcome is the documented one (docs/reliability.md, "Sampling for
// Datadog"), and the APM stats count every span whatever the sampler decided.
func TestSamplingOfAwkwardTraces(t *testing.T) {
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := harness.StartSecureCollector(t, configs("environments/production.yaml"), "DD_API_KEY="+testAPIKey, "DD_INTAKE_URL="+intake.URL,
		"SAMPLING_DECISION_WAIT=2s", "DATADOG_SAMPLING_PERCENTAGE=0")

	// 1. The root never arrives: decided when the decision wait runs out; kept, for its error.
	col.Send(t, sampledTraces("no-root", newTraceID(), sampledSpan{"a", -1, false}, sampledSpan{"b", 0, true}))
	// 2. Split over two batches within the wait: one decision for the whole trace; kept, for the error in the second.
	split := newTraceID()
	col.Send(t, sampledTraces("split", split, sampledSpan{"root", -2, false}))
	col.Send(t, sampledTraces("split", split, sampledSpan{"child", -1, true}))
	// 3. Longer than the wait: the root (failed) is decided 2 s after it arrives, a child comes 4 s later; the
	// decision cache sends the late span after its trace.
	long := newTraceID()
	col.Send(t, sampledTraces("long", long, sampledSpan{"root", -2, true}))
	// 4. A trace of ordinary requests only: dropped.
	col.Send(t, sampledTraces("ordinary", newTraceID(), sampledSpan{"root", -2, false}, sampledSpan{"child", 0, false}))
	// 5. No trace id (all zero): the spans of every such request share one "trace", kept here for its error.
	col.Send(t, sampledTraces("no-trace-id", pcommon.TraceID{}, sampledSpan{"x", -2, false}, sampledSpan{"y", -2, true}))
	time.Sleep(4 * time.Second)
	col.Send(t, sampledTraces("long", long, sampledSpan{"late", -1, false}))

	shipped := func() map[string]int {
		out := map[string]int{}
		for _, s := range intake.Spans() {
			out[s.Service]++
		}
		return out
	}
	want := map[string]int{"no-root": 2, "split": 2, "long": 2, "no-trace-id": 2}
	harness.Eventually(t, 30*time.Second, "the kept traces at the intake", func() (bool, string) {
		got := shipped()
		ok := true
		for k, n := range want {
			ok = ok && got[k] == n
		}
		return ok, fmt.Sprintf("shipped per service %v, want %v", got, want)
	})
	time.Sleep(3 * time.Second) // the dropped trace would have been decided by now
	if got := shipped(); got["ordinary"] != 0 {
		t.Errorf("a trace without error or slow request was shipped at 0 %%: %v", got)
	}
	// APM stats count every span with a trace id, sampled or not; the datadog connector leaves out spans without one
	// (Datadog has no trace to file them under). The route metrics count them all.
	harness.Eventually(t, 30*time.Second, "APM stats and route metrics of every span, sampled or not", func() (bool, string) {
		hits := map[string]uint64{}
		for _, g := range intake.StatsGroups() {
			hits[g.Service] += g.Hits
		}
		requests := map[string]float64{}
		for _, p := range intake.Points() {
			if p.Metric == "http.server.route.requests" && !p.Sketch {
				requests[p.Tag("service.name")] += p.Value
			}
		}
		ok := hits["ordinary"] == 2 && hits["no-root"] == 2 && hits["split"] == 2 && hits["long"] == 2 && hits["no-trace-id"] == 0
		for _, service := range []string{"ordinary", "no-root", "split", "long", "no-trace-id"} {
			ok = ok && requests[service] == 2
		}
		return ok, fmt.Sprintf("APM stats hits per service %v, route metrics requests %v", hits, requests)
	})
	if body, err := harness.Get("http://127.0.0.1:" + col.Telemetry + "/metrics"); err == nil {
		for _, line := range strings.Split(body, "\n") {
			if strings.HasPrefix(line, "otelcol_processor_tail_sampling_count_traces_sampled") {
				t.Logf("own telemetry: %s", line)
			}
		}
	}
	if col.Exited() {
		t.Fatal("the gateway exited")
	}
}
