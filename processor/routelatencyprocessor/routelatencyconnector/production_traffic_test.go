package routelatencyconnector

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/spanmix"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// requestsByRoute sums a Sum metric per "service|environment|method route" over every resource.
func requestsByRoute(t *testing.T, md pmetric.Metrics, metric string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() != metric {
				continue
			}
			dps := ms.At(j).Sum().DataPoints()
			for k := 0; k < dps.Len(); k++ {
				a := dps.At(k).Attributes()
				str := func(key string) string {
					if v, ok := a.Get(key); ok {
						return v.AsString()
					}
					return ""
				}
				out[str("service.name")+"|"+str("deployment.environment.name")+"|"+str("http.request.method")+" "+str("http.route")] += dps.At(k).IntValue()
			}
		}
	}
	return out
}

// A 10,000-path scanner burst (404s with no route) hits a service that declares its routes; then the application's
// routes, some new, arrive. They are counted exactly under their own names, never {overflow}; the scanner is one
// {unmatched} series.
func TestScannerBurstLeavesDeclaredRoutesExact(t *testing.T) {
	tc := newTestConnector(t, nil)
	declared := span{service: "shop", env: "production", name: "GET /items/{item_id}", attrs: map[string]any{"http.request.method": "GET", "http.route": "/items/{item_id}", "http.response.status_code": 200}, duration: 5 * time.Millisecond}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(declared)))

	scan := make([]span, 0, 10_000)
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10_000 {
		path := fmt.Sprintf("/%x.php", rng.Uint64())
		scan = append(scan, span{service: "shop", env: "production", name: "GET", attrs: get(path, 404), duration: time.Millisecond})
	}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(scan...)))

	var after []span
	for i := range 400 { // more declared routes than max_guessed_routes_per_service, fewer than max_routes_per_service
		route := fmt.Sprintf("/new/%d/{x}", i)
		after = append(after, span{service: "shop", env: "production", name: "GET " + route, attrs: map[string]any{"http.request.method": "GET", "http.route": route, "http.response.status_code": 200}, duration: 2 * time.Millisecond})
	}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(after...)))

	got := requestsByRoute(t, tc.flushAt(15*time.Second), "http.server.route.requests")
	assert.Equal(t, int64(10_000), got["shop|production|GET {unmatched}"])
	assert.Equal(t, int64(1), got["shop|production|GET /items/{item_id}"])
	for i := range 400 {
		assert.Equal(t, int64(1), got[fmt.Sprintf("shop|production|GET /new/%d/{x}", i)], i)
	}
	assert.Zero(t, got["shop|production|GET {overflow}"])
	assert.Len(t, got, 402)
}

// With unmatched: guess, the burst fills the guessed routes; once it stops and the idle time passes, a new guessed
// route gets its own series again, and every request of the burst is in the totals.
func TestGuessedRoutesFreeTheirSlotsAfterABurst(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) {
		c.Routes.Unmatched = route.UnmatchedGuess
		c.Routes.GuessedRouteIdle = time.Minute
	})
	scan := make([]span, 0, 10_000)
	for i := range 10_000 {
		scan = append(scan, span{service: "shop", env: "production", name: "GET", attrs: get(fmt.Sprintf("/scan-%d.php", i), 404), duration: time.Millisecond})
	}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(scan...)))
	newRoute := span{service: "shop", env: "production", name: "GET", attrs: get("/reports/q3", 200), duration: time.Millisecond}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(newRoute)))
	got := requestsByRoute(t, tc.flushAt(15*time.Second), "http.server.route.requests")
	assert.Equal(t, int64(10_000-100+1), got["shop|production|GET {overflow}"], "the burst past 100 guessed routes, and the new route")
	assert.Zero(t, got["shop|production|GET /reports/q3"])

	tc.clock.set(t0.Add(7 * time.Second)) // one-hit routes leave after a tenth of the idle time
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(newRoute)))
	md := tc.flushAt(30 * time.Second)
	got = requestsByRoute(t, md, "http.server.route.requests")
	assert.Equal(t, int64(1), got["shop|production|GET /reports/q3"])
	var total int64
	for _, n := range got {
		total += n
	}
	assert.Equal(t, int64(10_002), total, "cumulative totals keep every request")
}

// Two environments of one service are two series, each carrying service and environment as data point attributes
// (what a Prometheus endpoint turns into labels).
func TestEnvironmentsAreSeparateSeries(t *testing.T) {
	tc := newTestConnector(t, nil)
	item := map[string]any{"http.request.method": "GET", "http.route": "/items/{item_id}", "http.response.status_code": 200}
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(
		span{service: "shop", env: "staging", name: "GET /items/{item_id}", attrs: item, duration: time.Millisecond},
		span{service: "shop", env: "production", name: "GET /items/{item_id}", attrs: item, duration: time.Millisecond},
		span{service: "shop", env: "production", name: "GET /items/{item_id}", attrs: item, duration: time.Millisecond},
	)))
	got := requestsByRoute(t, tc.flushAt(15*time.Second), "http.server.route.requests")
	assert.Equal(t, map[string]int64{"shop|staging|GET /items/{item_id}": 1, "shop|production|GET /items/{item_id}": 2}, got)
}

// 100,000 requests sampled at 10 % by an OpenTelemetry consistent probability sampler (th:e666 in the tracestate,
// kept when the trace id's 56 random bits reach the threshold): requests within 3 % of 100,000, errors within three
// standard deviations of the true count.
func TestSampledSpansCountAsTheRequestsTheyStandFor(t *testing.T) {
	tc := newTestConnector(t, nil)
	const requests, errorRate = 100_000, 0.02
	const threshold = uint64(0xe666) << 40 // th:e666 on 56 bits: p = 0.1 up to 1e-5
	rng := rand.New(rand.NewPCG(5, 6))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "shop")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	end := pcommon.NewTimestampFromTime(t0)
	var errorsSent, kept int
	for range requests {
		var traceID pcommon.TraceID
		var spanID pcommon.SpanID
		binary.BigEndian.PutUint64(traceID[:8], rng.Uint64())
		binary.BigEndian.PutUint64(traceID[8:], rng.Uint64())
		binary.BigEndian.PutUint64(spanID[:], rng.Uint64())
		isError := rng.Float64() < errorRate
		if isError {
			errorsSent++
		}
		randomness := binary.BigEndian.Uint64(traceID[8:]) & (1<<56 - 1) // the W3C random bits of the trace id
		if randomness < threshold {
			continue // not sampled: never leaves the SDK
		}
		kept++
		s := spans.AppendEmpty()
		s.SetKind(ptrace.SpanKindServer)
		s.SetName("GET /items/{item_id}")
		s.SetTraceID(traceID)
		s.SetSpanID(spanID)
		s.TraceState().FromRaw("ot=th:e666")
		s.SetStartTimestamp(end - pcommon.Timestamp(10*time.Millisecond))
		s.SetEndTimestamp(end)
		code := int64(200)
		if isError {
			code = 500
		}
		s.Attributes().PutInt("http.response.status_code", code)
	}
	require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	md := tc.flushAt(15 * time.Second)
	var gotRequests, gotErrors int64
	for _, n := range requestsByRoute(t, md, "http.server.route.requests") {
		gotRequests += n
	}
	for _, n := range requestsByRoute(t, md, "http.server.route.errors") {
		gotErrors += n
	}
	t.Logf("sent %d requests (%d errors); %d spans kept; counted %d requests, %d errors", requests, errorsSent, kept, gotRequests, gotErrors)
	assert.InEpsilon(t, requests, gotRequests, 0.03)
	// Each error is kept with p = 0.1 and counts ~10: variance errorsSent * (1-p)/p.
	assert.InDelta(t, errorsSent, gotErrors, 3*math.Sqrt(float64(errorsSent)*9))

	hist := findMetric(t, md, "http.server.route.duration").ExponentialHistogram().DataPoints()
	var histCount uint64
	for i := 0; i < hist.Len(); i++ {
		histCount += hist.At(i).Count()
	}
	assert.Equal(t, uint64(gotRequests), histCount, "the histogram counts what the request counter counts")

	// Off, each span counts once.
	tc = newTestConnector(t, func(c *Config) { c.AdjustedCounts = false })
	require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	var raw int64
	for _, n := range requestsByRoute(t, tc.flushAt(15*time.Second), "http.server.route.requests") {
		raw += n
	}
	assert.Equal(t, int64(kept), raw)
}

func TestMalformedThresholdCountsOneAndIsReported(t *testing.T) {
	tc := newTestConnector(t, nil)
	td := traces(span{service: "shop", name: "GET /a/{x}", attrs: map[string]any{"http.route": "/a/{x}"}, duration: time.Millisecond},
		span{service: "shop", name: "GET /a/{x}", attrs: map[string]any{"http.route": "/a/{x}"}, duration: time.Millisecond})
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceState().FromRaw("ot=th:zz")
	td.ResourceSpans().At(1).ScopeSpans().At(0).Spans().At(0).TraceState().FromRaw("ot=th:c")
	require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	got := requestsByRoute(t, tc.flushAt(15*time.Second), "http.server.route.requests")
	assert.Equal(t, map[string]int64{"shop||GET /a/{x}": 1 + 4}, got)
}

// The connector reuses the route the processor wrote (http.route, http.route.guessed) instead of templating again,
// and gets the same routes, in the same budgets, as when it resolves the raw spans itself.
func TestConnectorAfterProcessorSeesTheSameRoutes(t *testing.T) {
	input := spanmix.Traces(1, 2000, 3)
	scanner := traces(span{service: "service-0", env: "production", name: "GET", attrs: get("/wp-login.php", 404), duration: time.Millisecond},
		span{service: "service-1", env: "production", name: "GET /orders/991", attrs: get("/orders/991", 200), duration: time.Millisecond})
	scanner.ResourceSpans().MoveAndAppendTo(input.ResourceSpans())

	direct := newTestConnector(t, nil)
	require.NoError(t, direct.ConsumeTraces(context.Background(), cloneTraces(input)))

	factory := routelatencyprocessor.NewFactory()
	sink := &consumertest.TracesSink{}
	proc, err := factory.CreateTraces(context.Background(), processortest.NewNopSettings(factory.Type()), factory.CreateDefaultConfig(), sink)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, proc.Shutdown(context.Background())) }()
	require.NoError(t, proc.ConsumeTraces(context.Background(), cloneTraces(input)))
	processed := sink.AllTraces()[0]
	guessed := 0
	for i := 0; i < processed.ResourceSpans().Len(); i++ {
		spans := processed.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		for j := 0; j < spans.Len(); j++ {
			if _, ok := spans.At(j).Attributes().Get(route.AttrRouteGuessed); ok {
				guessed++
			}
		}
	}
	require.Positive(t, guessed, "the mix has raw paths for the id rules")
	after := newTestConnector(t, nil)
	require.NoError(t, after.ConsumeTraces(context.Background(), processed))

	want := requestsByRoute(t, direct.flushAt(15*time.Second), "http.server.route.requests")
	assert.Equal(t, want, requestsByRoute(t, after.flushAt(15*time.Second), "http.server.route.requests"))
	assert.Positive(t, want["service-0|production|GET {unmatched}"], "the scanner's 404 and the mix's own 404s on raw paths")
	assert.Equal(t, int64(1), want["service-1|production|GET /orders/{id}"])
	assert.Equal(t, direct.resolver.Tracked(), after.resolver.Tracked())
}

func cloneTraces(td ptrace.Traces) ptrace.Traces {
	out := ptrace.NewTraces()
	td.CopyTo(out)
	return out
}

// http.server.request.duration, when asked for, is the route histogram again under the semantic conventions' name,
// with error.type on 5xx.
func TestHTTPServerRequestDurationFollowsTheConventions(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) { c.HTTPServerRequestDuration = true })
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	md := tc.flushAt(15 * time.Second)
	m := findMetric(t, md, "http.server.request.duration")
	assert.Equal(t, "s", m.Unit())
	dps := m.ExponentialHistogram().DataPoints()
	routeDps := findMetric(t, md, "http.server.route.duration").ExponentialHistogram().DataPoints()
	require.Equal(t, routeDps.Len(), dps.Len())
	var withErrorType int
	for i := 0; i < dps.Len(); i++ {
		a := dps.At(i).Attributes()
		for _, key := range []string{"http.request.method", "http.route", "http.response.status_code"} {
			_, ok := a.Get(key)
			assert.True(t, ok, key)
		}
		code, _ := a.Get("http.response.status_code")
		errType, ok := a.Get("error.type")
		if code.Int() >= 500 {
			withErrorType++
			assert.Equal(t, code.AsString(), errType.Str())
		} else {
			assert.False(t, ok)
		}
		assert.Equal(t, routeDps.At(i).Count(), dps.At(i).Count())
	}
	assert.Equal(t, 1, withErrorType)

	cfg := createDefaultConfig().(*Config)
	cfg.HTTPServerRequestDuration, cfg.StatusCode = true, statusClass
	assert.ErrorContains(t, cfg.Validate(), "http_server_request_duration: needs status_code")
}

// Each gateway replica writes its own service.instance.id on every data point: two replicas' cumulative series of
// one route are two series, never one written by two processes.
func TestReplicasWriteTheirInstanceID(t *testing.T) {
	traffic := traces(span{service: "shop", env: "production", name: "GET /items/{item_id}", attrs: map[string]any{"http.route": "/items/{item_id}", "http.response.status_code": 200}, duration: time.Millisecond})
	for _, tc := range []struct {
		instanceID string
		option     bool
		want       string
	}{{"replica-a", true, "replica-a"}, {"replica-b", true, "replica-b"}, {"replica-a", false, ""}} {
		set := connectortest.NewNopSettings(metadata.Type)
		set.Resource.Attributes().PutStr("service.instance.id", tc.instanceID)
		cfg := createDefaultConfig().(*Config)
		cfg.CollectorInstanceID = tc.option
		sink := &consumertest.MetricsSink{}
		c, err := newRouteConnector(set, cfg, sink, wallClock{})
		require.NoError(t, err)
		require.NoError(t, c.ConsumeTraces(context.Background(), traffic))
		require.NoError(t, c.flush(context.Background()))
		require.NoError(t, c.Shutdown(context.Background()))
		dps := findMetric(t, sink.AllMetrics()[0], "http.server.route.requests").Sum().DataPoints()
		require.Equal(t, 1, dps.Len())
		got, ok := dps.At(0).Attributes().Get("collector.instance.id")
		if tc.want == "" {
			assert.False(t, ok, "collector_instance_id: false")
			continue
		}
		assert.Equal(t, tc.want, got.Str())
	}
}
