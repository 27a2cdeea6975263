package routelatencyconnector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadatatest"
)

// orderTrace builds spans of one GET /orders/{order_id} request (34 ms, trace id {7}) as a FastAPI service on
// SQLite sends them: a query for the order, five for its items (an N+1 loop) and a downstream call, from 0 ms.
type orderTrace struct{ start time.Time }

func (o orderTrace) span(spans ptrace.SpanSlice, id, parent byte, name string, kind ptrace.SpanKind, from, to int, attrs map[string]any) {
	s := spans.AppendEmpty()
	s.SetTraceID(pcommon.TraceID{7})
	s.SetSpanID(pcommon.SpanID{id})
	if parent != 0 {
		s.SetParentSpanID(pcommon.SpanID{parent})
	}
	s.SetName(name)
	s.SetKind(kind)
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(o.start.Add(time.Duration(from) * time.Millisecond)))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(o.start.Add(time.Duration(to) * time.Millisecond)))
	_ = s.Attributes().FromRaw(attrs)
}

func (o orderTrace) batch(service string, add func(ptrace.SpanSlice)) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("deployment.environment.name", "production")
	add(rs.ScopeSpans().AppendEmpty().Spans())
	return td
}

// orderSeries is the dashboard API's last 5 minutes of GET /orders/{order_id}.
func orderSeries(t *testing.T, c *routeConnector) []byte {
	q := url.Values{"service": {"shop"}, "method": {"GET"}, "route": {"/orders/{order_id}"}, "window": {"5m"}}
	rec := httptest.NewRecorder()
	c.dashboard.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/series?"+q.Encode(), nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return rec.Body.Bytes()
}

// orderCallsPerRequest reads GET /orders/{order_id}'s breakdown from the dashboard API: the requests recorded and
// the calls per request of each category.
func orderCallsPerRequest(t *testing.T, c *routeConnector) (uint64, map[string]float64) {
	var body struct {
		Breakdown struct {
			Requests uint64
			Parts    []struct {
				Category        string
				CallsPerRequest float64 `json:"calls_per_request"`
			}
		}
	}
	require.NoError(t, json.Unmarshal(orderSeries(t, c), &body))
	calls := map[string]float64{}
	for _, p := range body.Breakdown.Parts {
		calls[p.Category] = p.CallsPerRequest
	}
	return body.Breakdown.Requests, calls
}

// newObservedConnector returns a connector of cfg as given (newTestConnector turns the breakdown and the errors
// off), its own telemetry observed in tel, its clock starting at t0.
func newObservedConnector(t *testing.T, cfg *Config, sink *consumertest.MetricsSink) (*routeConnector, *componenttest.Telemetry, *fakeClock) {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	clock := &fakeClock{now: t0, ticks: make(chan time.Time)}
	c, err := newRouteConnector(metadatatest.NewSettings(tel), cfg, sink, clock)
	require.NoError(t, err)
	return c, tel, clock
}

// assertUnjoined checks the own telemetry's descendants left out of breakdowns, by reason.
func assertUnjoined(t *testing.T, tel *componenttest.Telemetry, late, orphan, bound int64) {
	t.Helper()
	metadatatest.AssertEqualConnectorRoutelatencyBreakdownUnjoinedSpans(t, tel, []metricdata.DataPoint[int64]{
		{Value: late, Attributes: attribute.NewSet(attribute.String("reason", "late"))},
		{Value: orphan, Attributes: attribute.NewSet(attribute.String("reason", "orphan"))},
		{Value: bound, Attributes: attribute.NewSet(attribute.String("reason", "bound"))},
	}, metricdatatest.IgnoreTimestamp())
}

// assertRecorded checks the own telemetry's recorded breakdowns, by what recorded them.
func assertRecorded(t *testing.T, tel *componenttest.Telemetry, grace, bound int64) {
	t.Helper()
	metadatatest.AssertEqualConnectorRoutelatencyBreakdownRequests(t, tel, []metricdata.DataPoint[int64]{
		{Value: grace, Attributes: attribute.NewSet(attribute.String("trigger", "grace"))},
		{Value: bound, Attributes: attribute.NewSet(attribute.String("trigger", "bound"))},
	}, metricdatatest.IgnoreTimestamp())
}

// TestBreakdownJoinsBatchesAndShowsOnTheRoutePage: the queries come in a batch before their request, the
// downstream call in one after it, within the grace; one query comes 2 s after the request was recorded (late),
// another 30 s after (an orphan: nothing remembers a request that long). The route page's API shows the split
// computed by hand, the N+1 loop flagged, and the own telemetry counts the late span.
func TestBreakdownJoinsBatchesAndShowsOnTheRoutePage(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Dashboard.Endpoint = "127.0.0.1:0"
	require.NoError(t, cfg.Validate())
	sink := &consumertest.MetricsSink{}
	c, tel, clock := newObservedConnector(t, cfg, sink)
	ctx := context.Background()
	o := orderTrace{start: t0.Add(-time.Second)}
	db := func(statement string) map[string]any {
		return map[string]any{"db.system": "sqlite", "db.name": "shop", "db.statement": statement}
	}

	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 2, 1, "SELECT shop", ptrace.SpanKindClient, 1, 5, db("SELECT * FROM orders WHERE id = 42"))
		for i := range 5 {
			o.span(s, byte(3+i), 1, "SELECT shop", ptrace.SpanKindClient, 6+3*i, 8+3*i, db("SELECT * FROM items WHERE order_id = 42 AND n = "+string(rune('0'+i))))
		}
	})))
	clock.set(t0.Add(time.Second))
	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 1, 0, "GET /orders/{order_id}", ptrace.SpanKindServer, 0, 34, map[string]any{
			"http.request.method": "GET", "http.route": "/orders/{order_id}", "http.response.status_code": 200})
	})))
	clock.set(t0.Add(3 * time.Second))
	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 9, 1, "GET", ptrace.SpanKindClient, 22, 31, map[string]any{"http.request.method": "GET", "http.url": "http://payments:8080/charge"})
	})))
	clock.set(t0.Add(6 * time.Second)) // the request's grace (5 s) has ended
	require.NoError(t, c.flush(ctx))
	// 2 s after the request was recorded: late. 30 s after: nothing remembers the request any more, an orphan.
	clock.set(t0.Add(8 * time.Second))
	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 10, 1, "SELECT shop", ptrace.SpanKindClient, 32, 33, db("SELECT 1"))
	})))
	clock.set(t0.Add(31 * time.Second))
	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 11, 1, "SELECT shop", ptrace.SpanKindClient, 32, 33, db("SELECT 1"))
	})))
	clock.set(t0.Add(37 * time.Second))
	require.NoError(t, c.flush(ctx))

	var body struct {
		Points []struct {
			BreakdownRequests uint64             `json:"breakdown_requests"`
			BreakdownMs       map[string]float64 `json:"breakdown_ms"`
		} `json:"points"`
		Breakdown struct {
			Requests uint64
			Parts    []struct {
				Category, Target string
				TimeShare        float64 `json:"time_share"`
				CallsPerRequest  float64 `json:"calls_per_request"`
				P50Ms            float64 `json:"p50_ms"`
			}
			Statements []struct {
				Target string
				Calls  uint64
			}
			NPlusOne struct {
				Requests   uint64
				Statement  string
				MaxRepeats int `json:"max_repeats"`
				Examples   []struct {
					TraceID string `json:"trace_id"`
				}
			} `json:"n_plus_one"`
		}
	}
	require.NoError(t, json.Unmarshal(orderSeries(t, c), &body))

	// By hand: queries 4 + 5 x 2 = 14 ms, the downstream call 9 ms, the request's own 34 - 23 = 11 ms.
	assert.Equal(t, uint64(1), body.Breakdown.Requests)
	got := map[string]float64{}
	for _, p := range body.Breakdown.Parts {
		got[p.Category+" "+p.Target] = p.P50Ms
	}
	assert.InEpsilon(t, 14.0, got["db sqlite shop"], 0.01)
	assert.InEpsilon(t, 9.0, got["http payments:8080"], 0.01)
	assert.InEpsilon(t, 11.0, got["self "], 0.01)
	require.Len(t, body.Breakdown.Parts, 3)
	assert.Equal(t, "db", body.Breakdown.Parts[0].Category, "heaviest first")
	assert.InDelta(t, 6.0, body.Breakdown.Parts[0].CallsPerRequest, 1e-9)
	assert.InDelta(t, 14.0/34, body.Breakdown.Parts[0].TimeShare, 1e-9)
	assert.Equal(t, uint64(1), body.Breakdown.NPlusOne.Requests)
	assert.Equal(t, "SELECT * FROM items WHERE order_id = ? AND n = ?", body.Breakdown.NPlusOne.Statement)
	assert.Equal(t, 5, body.Breakdown.NPlusOne.MaxRepeats)
	require.Len(t, body.Breakdown.NPlusOne.Examples, 1)
	assert.Equal(t, pcommon.TraceID{7}.String(), body.Breakdown.NPlusOne.Examples[0].TraceID)
	sumMs, recorded := 0.0, uint64(0)
	for _, p := range body.Points {
		recorded += p.BreakdownRequests
		for _, v := range p.BreakdownMs {
			sumMs += v
		}
	}
	assert.Equal(t, uint64(1), recorded)
	assert.InDelta(t, 34.0, sumMs, 1e-9, "the slice's categories add up to the request's duration")

	// The metrics: one request in each part, its time in the part as the histogram's sum (cumulative).
	parts := map[string][2]float64{}
	for _, md := range sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				if ms.At(j).Name() != "http.server.route.breakdown.duration" {
					continue
				}
				dps := ms.At(j).ExponentialHistogram().DataPoints()
				for k := 0; k < dps.Len(); k++ {
					a := dps.At(k).Attributes().AsRaw()
					require.Equal(t, "/orders/{order_id}", a["http.route"])
					parts[fmt.Sprint(a["breakdown.category"], " ", a["breakdown.target"])] = [2]float64{float64(dps.At(k).Count()), dps.At(k).Sum()}
				}
			}
		}
	}
	assert.Len(t, parts, 3)
	assert.Equal(t, uint64(1), uint64(parts["db sqlite shop"][0]))
	assert.InDelta(t, 0.014, parts["db sqlite shop"][1], 1e-9)
	assert.InDelta(t, 0.009, parts["http payments:8080"][1], 1e-9)
	assert.InDelta(t, 0.011, parts["self "][1], 1e-9)

	assertRecorded(t, tel, 1, 0)
	assertUnjoined(t, tel, 1, 1, 0)
}

// A batch larger than max_spans: the join drops what does not fit without reading it, and counts it (room is made
// only from requests of earlier batches); the request, listed first, is recorded with the descendants held before
// the bound.
func TestBreakdownAtItsBoundCountsWhatItDrops(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.MaxSpans, cfg.Breakdown.MaxSpansPerTrace = 5, 5 // the request and four queries
	cfg.Dashboard.Endpoint = "127.0.0.1:0"
	c, tel, clock := newObservedConnector(t, cfg, &consumertest.MetricsSink{})
	ctx := context.Background()
	o := orderTrace{start: t0.Add(-time.Second)}
	require.NoError(t, c.ConsumeTraces(ctx, o.batch("shop", func(s ptrace.SpanSlice) {
		o.span(s, 1, 0, "GET /orders/{order_id}", ptrace.SpanKindServer, 0, 34, map[string]any{
			"http.request.method": "GET", "http.route": "/orders/{order_id}", "http.response.status_code": 200})
		for i := range 6 {
			o.span(s, byte(2+i), 1, "SELECT shop", ptrace.SpanKindClient, 1+5*i, 5+5*i, map[string]any{"db.system": "sqlite", "db.name": "shop"})
		}
	})))
	assert.Equal(t, int64(5), c.breakdowns.Held())
	clock.set(t0.Add(6 * time.Second))
	require.NoError(t, c.flush(ctx))

	requests, calls := orderCallsPerRequest(t, c)
	assert.Equal(t, uint64(1), requests)
	assert.InDelta(t, 4.0, calls["db"], 1e-9, "the four queries held before the bound")
	assertUnjoined(t, tel, 0, 0, 2)
}

// TestBreakdownPastItsBoundRecordsEveryRequest: a worker's batch of twenty queries without a request (its spans are
// not requests) fills a max_spans of 20; then forty batches of one request and its four queries each, one every
// 10 ms. Each batch makes room from what waited longest: the worker's queries first (let go, counted), then the
// request that has waited longest, recorded early with its queries (they came in its batch): every request gets
// its whole breakdown, and own telemetry counts which were recorded at the bound.
func TestBreakdownPastItsBoundRecordsEveryRequest(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.MaxSpans = 20
	cfg.Dashboard.Endpoint = "127.0.0.1:0"
	c, tel, clock := newObservedConnector(t, cfg, &consumertest.MetricsSink{})
	ctx := context.Background()
	// The worker's join is another shard's than the shop's (max_spans is theirs together).
	workerService := "worker"
	for i := 0; c.store.ShardIndex(workerService) == c.store.ShardIndex("shop"); i++ {
		workerService = fmt.Sprintf("worker-%d", i)
	}
	worker := orderTrace{start: t0.Add(-2 * time.Second)}
	require.NoError(t, c.ConsumeTraces(ctx, worker.batch(workerService, func(s ptrace.SpanSlice) {
		for q := range 20 {
			worker.span(s, byte(2+q), 1, "SELECT jobs", ptrace.SpanKindClient, q, q+1, map[string]any{"db.system": "sqlite", "db.name": "jobs"})
		}
	})))
	require.Equal(t, int64(20), c.breakdowns.Held())
	const requests = 40
	for i := range requests {
		at := t0.Add(time.Duration(i) * 10 * time.Millisecond)
		clock.set(at)
		o := orderTrace{start: at.Add(-time.Second)}
		td := o.batch("shop", func(s ptrace.SpanSlice) {
			for q := range 4 {
				o.span(s, byte(2+q), 1, "SELECT shop", ptrace.SpanKindClient, 1+5*q, 5+5*q, map[string]any{"db.system": "sqlite", "db.name": "shop"})
			}
			o.span(s, 1, 0, "GET /orders/{order_id}", ptrace.SpanKindServer, 0, 34, map[string]any{
				"http.request.method": "GET", "http.route": "/orders/{order_id}", "http.response.status_code": 200})
		})
		spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for k := 0; k < spans.Len(); k++ {
			spans.At(k).SetTraceID(pcommon.TraceID{7, byte(i)})
		}
		require.NoError(t, c.ConsumeTraces(ctx, td))
		assert.LessOrEqual(t, c.breakdowns.Held(), int64(20))
	}
	clock.set(t0.Add(10 * time.Second))
	require.NoError(t, c.flush(ctx))

	recorded, calls := orderCallsPerRequest(t, c)
	assert.Equal(t, uint64(requests), recorded, "every request has its breakdown")
	assert.InDelta(t, 4.0, calls["db"], 1e-9, "with every query of its batch")
	// Once four requests wait, each batch of five needs the room of one: only the last four wait their grace (the
	// flush records them).
	assertRecorded(t, tel, 4, requests-4)
	assertUnjoined(t, tel, 0, 0, 20)
}
