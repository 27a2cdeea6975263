package routelatencyconnector

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/errorgroups"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// A batch as an instrumented service sends it: checkouts that fail with a declined card (an exception on the
// request span, an email in its message) or a database error (on a child span, joined through the breakdown), a
// 503 without any exception, and item reads that handle a cache miss.
func errorTraffic(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	rs.Resource().Attributes().PutStr("service.version", "2.0.0")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	end := pcommon.NewTimestampFromTime(t0.Add(-time.Second))
	exception := func(s ptrace.Span, typ, msg string) {
		e := s.Events().AppendEmpty()
		e.SetName("exception")
		e.Attributes().PutStr("exception.type", typ)
		e.Attributes().PutStr("exception.message", msg)
		e.Attributes().PutStr("exception.stacktrace", "Traceback (most recent call last):\n  File \"/app/shop/pay.py\", line 3, in charge\n"+typ+": "+msg)
	}
	for i := range n {
		req := spans.AppendEmpty()
		req.SetTraceID(pcommon.TraceID{byte(i + 1), 9})
		req.SetSpanID(pcommon.SpanID{byte(i + 1), 1})
		req.SetKind(ptrace.SpanKindServer)
		req.SetStartTimestamp(end - 50e6)
		req.SetEndTimestamp(end)
		method, route, code := "POST", "/checkout", int64(500)
		switch i % 4 {
		case 0:
			exception(req, "PaymentDeclined", "card declined for alice@example.com")
		case 1:
			db := spans.AppendEmpty()
			db.SetTraceID(req.TraceID())
			db.SetSpanID(pcommon.SpanID{byte(i + 1), 2})
			db.SetParentSpanID(req.SpanID())
			db.SetKind(ptrace.SpanKindClient)
			db.SetStartTimestamp(end - 40e6)
			db.SetEndTimestamp(end - 10e6)
			db.Attributes().PutStr("db.system.name", "sqlite")
			exception(db, "OperationalError", "database is locked")
		case 2:
			code = 503
		case 3:
			method, route, code = "GET", "/items/{item_id}", 200
			exception(req, "CacheMiss", "item 42 not cached")
		}
		req.SetName(method + " " + route)
		req.Attributes().PutStr("http.request.method", method)
		req.Attributes().PutStr("http.route", route)
		req.Attributes().PutInt("http.response.status_code", code)
		if code >= 500 {
			req.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	return td
}

func TestErrorGroupsFromRequestsAndTheirDescendants(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Dashboard.Endpoint = "127.0.0.1:0"
	cfg.Breakdown.Grace = 100 * time.Millisecond
	require.NoError(t, cfg.Validate())
	clock := &fakeClock{now: t0, ticks: make(chan time.Time)}
	sink := &consumertest.MetricsSink{}
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, sink, clock)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	require.NoError(t, c.ConsumeTraces(context.Background(), errorTraffic(40)))
	clock.set(t0.Add(time.Second)) // past the grace: the children's exceptions are joined
	require.NoError(t, c.flush(context.Background()))

	rec := httptest.NewRecorder()
	c.dashboard.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/errors?service=shop", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var body struct {
		Groups []struct {
			Route, Type, Message   string
			Count, Failed, Handled uint64
			TopFrame               string `json:"top_frame"`
			FirstVersion           string `json:"first_version"`
			ExampleMessage         string `json:"example_message"`
		}
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	got := map[string][3]uint64{}
	for _, g := range body.Groups {
		got[g.Route+" "+g.Type] = [3]uint64{g.Count, g.Failed, g.Handled}
		assert.NotContains(t, g.ExampleMessage, "alice", "masked before it is kept")
		assert.Equal(t, "2.0.0", g.FirstVersion)
	}
	assert.Equal(t, map[string][3]uint64{
		"/checkout PaymentDeclined":            {10, 10, 0},
		"/checkout OperationalError":           {10, 10, 0},
		"/checkout " + errorgroups.StatusError: {10, 10, 0},
		"/items/{item_id} CacheMiss":           {10, 0, 10},
	}, got)

	// The counter per route and type.
	exceptions := map[string]int64{}
	for _, md := range sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				if ms.At(j).Name() != errorgroups.MetricExceptions {
					continue
				}
				for k := 0; k < ms.At(j).Sum().DataPoints().Len(); k++ {
					dp := ms.At(j).Sum().DataPoints().At(k)
					typ, _ := dp.Attributes().Get("exception.type")
					exceptions[typ.Str()] = dp.IntValue()
				}
			}
		}
	}
	assert.Equal(t, map[string]int64{"PaymentDeclined": 10, "OperationalError": 10, errorgroups.StatusError: 10, "CacheMiss": 10}, exceptions)
}

// A failure's status message is kept as UTF-8, however short: a span of a service that writes raw bytes there
// (the default config does not refuse it) must not put them in the error groups.
func TestStatusMessageKeptAsUTF8(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, &consumertest.MetricsSink{}, &fakeClock{now: t0, ticks: make(chan time.Time)})
	require.NoError(t, err)
	span := ptrace.NewSpan()
	span.Status().SetCode(ptrace.StatusCodeError)
	span.Status().SetMessage("bad \xff byte")
	got := c.recordExceptions(span, errorgroups.RouteKey{Service: "shop"}, "", true, 500, 1, t0, true)
	assert.Equal(t, "bad \uFFFD byte", got)
}
