package routelatencyconnector

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/aggregate"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadatatest"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// fakeClock is a hand-driven clock: the test sets the time and sends the flush loop its ticks.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	ticks chan time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Ticks(time.Duration) (<-chan time.Time, func()) { return f.ticks, func() {} }

func (f *fakeClock) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
}

// testConnector is a connector on a hand-driven clock, flushed by the test.
type testConnector struct {
	*routeConnector
	t     testing.TB
	sink  *consumertest.MetricsSink
	clock *fakeClock
}

// newTestConnector tests the route metrics: the breakdown and the error groups, which have tests of their own, are
// off unless mutate turns them on.
func newTestConnector(t testing.TB, mutate func(*Config)) *testConnector {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = false
	cfg.Errors.Enabled = false
	if mutate != nil {
		mutate(cfg)
	}
	require.NoError(t, cfg.Validate())
	sink := &consumertest.MetricsSink{}
	tc := &testConnector{t: t, sink: sink, clock: &fakeClock{now: t0, ticks: make(chan time.Time)}}
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, sink, tc.clock)
	require.NoError(t, err)
	tc.routeConnector = c
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	return tc
}

// flushAt advances the clock and flushes, returning what the connector emitted (empty when it emitted nothing).
func (tc *testConnector) flushAt(d time.Duration) pmetric.Metrics {
	tc.clock.set(t0.Add(d))
	before := len(tc.sink.AllMetrics())
	require.NoError(tc.t, tc.flush(context.Background()))
	if all := tc.sink.AllMetrics(); len(all) > before {
		return all[len(all)-1]
	}
	return pmetric.NewMetrics()
}

type span struct {
	service, env, name string
	attrs              map[string]any
	duration           time.Duration
	status             ptrace.StatusCode
	kind               ptrace.SpanKind
	traceByte          byte
}

func traces(spans ...span) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.service)
		if s.env != "" {
			rs.Resource().Attributes().PutStr("deployment.environment.name", s.env)
		}
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(s.name)
		kind := s.kind
		if kind == ptrace.SpanKindUnspecified {
			kind = ptrace.SpanKindServer
		}
		sp.SetKind(kind)
		end := pcommon.NewTimestampFromTime(t0.Add(-time.Second))
		sp.SetStartTimestamp(end - pcommon.Timestamp(s.duration))
		sp.SetEndTimestamp(end)
		sp.Status().SetCode(s.status)
		if s.traceByte != 0 {
			sp.SetTraceID(pcommon.TraceID{s.traceByte, 1})
			sp.SetSpanID(pcommon.SpanID{s.traceByte, 2})
		}
		_ = sp.Attributes().FromRaw(s.attrs)
	}
	return td
}

func get(path string, code int64) map[string]any {
	return map[string]any{"http.request.method": "GET", "url.path": path, "http.response.status_code": code}
}

// mixedTraffic is the fixed mix behind the golden files: two services, raw paths, a declared route, errors.
func mixedTraffic() ptrace.Traces {
	return traces(
		span{service: "shop", env: "production", name: "GET /items/8812", attrs: get("/items/8812", 200), duration: 12 * time.Millisecond, traceByte: 1},
		span{service: "shop", env: "production", name: "GET /items/17", attrs: get("/items/17", 200), duration: 30 * time.Millisecond, traceByte: 2},
		span{service: "shop", env: "production", name: "GET /items/99", attrs: get("/items/99", 503), duration: 250 * time.Millisecond, status: ptrace.StatusCodeError, traceByte: 3},
		span{service: "shop", env: "production", name: "POST /checkout", attrs: map[string]any{"http.request.method": "POST", "http.route": "/checkout", "http.response.status_code": 201}, duration: 800 * time.Millisecond, traceByte: 4},
		span{service: "users", env: "staging", name: "GET", attrs: map[string]any{"http.method": "GET", "http.target": "/users/3f2b8c1e-9a4d-4e2f-8b1a-2c3d4e5f6a7b?full=1", "http.status_code": "404"}, duration: 3 * time.Millisecond, traceByte: 5},
	)
}

func compareGolden(t *testing.T, name string, got pmetric.Metrics) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteMetricsToFile(path, got, golden.SkipMetricTimestampNormalization()))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, got))
}

func TestCumulativeMetricsGolden(t *testing.T) {
	tc := newTestConnector(t, nil)
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	compareGolden(t, "cumulative_first.yaml", tc.flushAt(15*time.Second))

	// Cumulative: the second interval repeats the totals and adds to them; quantiles are the interval's own.
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	compareGolden(t, "cumulative_second.yaml", tc.flushAt(30*time.Second))
}

func TestDeltaMetricsGolden(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) { c.AggregationTemporality = "delta" })
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	compareGolden(t, "delta_first.yaml", tc.flushAt(15*time.Second))

	// Delta: an interval with nothing new emits nothing; then only what arrived since the last flush.
	assert.Zero(t, tc.flushAt(30*time.Second).DataPointCount())
	require.NoError(t, tc.ConsumeTraces(context.Background(), traces(mixedTraffic2()...)))
	compareGolden(t, "delta_third.yaml", tc.flushAt(45*time.Second))
}

func mixedTraffic2() []span {
	return []span{{service: "shop", env: "production", name: "GET /items/5", attrs: get("/items/5", 200), duration: 7 * time.Millisecond, traceByte: 9}}
}

func TestExplicitHistogramAndStatusClassGolden(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) {
		c.Histogram.Type = "explicit"
		c.StatusCode = "class"
		c.Quantiles = nil
		c.Exemplars.MaxPerDataPoint = 0
		c.Dimensions = []Dimension{{Name: "tenant", Default: "none"}}
	})
	td := mixedTraffic()
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("tenant", "acme")
	require.NoError(t, tc.ConsumeTraces(context.Background(), td))
	compareGolden(t, "explicit_status_class.yaml", tc.flushAt(15*time.Second))
}

func TestIdleSeriesExpire(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) { c.SeriesExpiry = 30 * time.Second })
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	assert.Equal(t, 2, tc.flushAt(15*time.Second).ResourceMetrics().Len())
	assert.Equal(t, 4, tc.store.Len())
	assert.Positive(t, tc.flushAt(25*time.Second).DataPointCount(), "still within expiry: cumulative series repeat")
	assert.Zero(t, tc.flushAt(31*time.Second).DataPointCount(), "past expiry: dropped")
	assert.Zero(t, tc.store.Len())
}

func TestBadSpansAreCountedNotAggregated(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	sink := &consumertest.MetricsSink{}
	c, err := newRouteConnector(metadatatest.NewSettings(tel), cfg, sink, wallClock{})
	require.NoError(t, err)

	td := traces(
		span{service: "shop", name: "GET /ok", attrs: get("/ok", 200), duration: time.Millisecond},
		span{service: "shop", name: "no http at all", attrs: map[string]any{"rpc.system": "grpc"}, duration: time.Millisecond},
		span{service: "shop", name: "GET /client", attrs: get("/client", 200), duration: time.Millisecond, kind: ptrace.SpanKindClient},
		span{service: "shop", name: "GET /absurd", attrs: get("/absurd", 200), duration: 48 * time.Hour},
		span{service: "shop\xff\xfe", name: "GET /bad-utf8/\xc3", attrs: get("/bad-utf8/\xc3", 200), duration: time.Millisecond},
		span{service: strings.Repeat("s", 1<<20), name: "GET /huge", attrs: get("/"+strings.Repeat("p", 1<<20), 200), duration: time.Millisecond},
	)
	backwards := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(backwards)
	backwards.SetStartTimestamp(backwards.EndTimestamp() + 1)
	unset := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().AppendEmpty()
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(unset)
	unset.SetStartTimestamp(0)

	require.NoError(t, c.ConsumeTraces(context.Background(), td))
	require.NoError(t, c.ConsumeTraces(context.Background(), ptrace.NewTraces()), "an empty batch")

	metadatatest.AssertEqualConnectorRoutelatencyRequestSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualConnectorRoutelatencyUnroutedSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualConnectorRoutelatencyInvalidSpans(t, tel, []metricdata.DataPoint[int64]{{Value: 3}}, metricdatatest.IgnoreTimestamp())

	md := c.store.Flush(pcommon.NewTimestampFromTime(time.Now()), nil)
	rms := md.ResourceMetrics()
	require.Equal(t, 3, rms.Len())
	for i := 0; i < rms.Len(); i++ {
		service, _ := rms.At(i).Resource().Attributes().Get("service.name")
		assert.LessOrEqual(t, len(service.Str()), aggregate.MaxAttributeLength)
		assert.True(t, isValidUTF8(service.Str()))
		dp := rms.At(i).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints().At(0)
		route, _ := dp.Attributes().Get("http.route")
		assert.LessOrEqual(t, len(route.Str()), 2048)
		assert.True(t, isValidUTF8(route.Str()), route.Str())
	}
}

func isValidUTF8(s string) bool { return strings.ToValidUTF8(s, "?") == s }

func TestSeriesCapSendsExtraToOverflowSeries(t *testing.T) {
	tc := newTestConnector(t, func(c *Config) { c.MaxSeries = 2 })
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	md := tc.flushAt(15 * time.Second)
	var overflowRequests int64
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		dps := rms.At(i).ScopeMetrics().At(0).Metrics().At(0).Sum().DataPoints()
		for j := 0; j < dps.Len(); j++ {
			if v, ok := dps.At(j).Attributes().Get(aggregate.AttrOverflow); ok && v.Bool() {
				overflowRequests += dps.At(j).IntValue()
			}
		}
	}
	assert.Equal(t, int64(2), overflowRequests, "4 series of 2, 1, 1 and 1 requests, 2 series allowed: the last two go to overflow")
	assert.Equal(t, 3, tc.store.Len())
}

func TestShutdownFlushesWhatWasAccepted(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.FlushInterval = time.Hour
	sink := &consumertest.MetricsSink{}
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, sink, wallClock{})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, c.ConsumeTraces(context.Background(), mixedTraffic()))
	require.NoError(t, c.Shutdown(context.Background()))
	require.Len(t, sink.AllMetrics(), 1)
	assert.Positive(t, sink.AllMetrics()[0].DataPointCount())
}

func TestConfigValidateNamesKeys(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.StatusCode = "codes"
	cfg.Histogram.Type = "linear"
	cfg.Quantiles = []float64{0.5, 1.5}
	cfg.AggregationTemporality = "sometimes"
	cfg.FlushInterval = time.Millisecond
	cfg.MaxSeries = 0
	cfg.Dimensions = []Dimension{{Name: "tenant"}, {Name: "tenant"}, {Name: "http.route"}}
	err := cfg.Validate()
	require.Error(t, err)
	for _, key := range []string{"status_code", "histogram.type", "quantiles[1]", "aggregation_temporality", "flush_interval", "max_series", "dimensions[1].name", "dimensions[2].name"} {
		assert.Contains(t, err.Error(), key)
	}
	require.NoError(t, createDefaultConfig().(*Config).Validate())
}

// The real flush loop, paced by the clock's ticks: each tick emits the interval.
func TestFlushLoopEmitsOnEachTick(t *testing.T) {
	tc := newTestConnector(t, nil)
	require.NoError(t, tc.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	tc.clock.set(t0.Add(15 * time.Second))
	tc.clock.ticks <- t0.Add(15 * time.Second)
	require.Eventually(t, func() bool { return len(tc.sink.AllMetrics()) == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(5), sumRequests(tc.sink.AllMetrics()[0]))

	require.NoError(t, tc.ConsumeTraces(context.Background(), mixedTraffic()))
	tc.clock.ticks <- t0.Add(30 * time.Second)
	require.Eventually(t, func() bool { return len(tc.sink.AllMetrics()) == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, int64(10), sumRequests(tc.sink.AllMetrics()[1]), "cumulative")
}

func sumRequests(md pmetric.Metrics) int64 {
	var n int64
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() == aggregate.MetricRequests {
				for k := 0; k < ms.At(j).Sum().DataPoints().Len(); k++ {
					n += ms.At(j).Sum().DataPoints().At(k).IntValue()
				}
			}
		}
	}
	return n
}

// Shutdown twice is safe, and a final flush the next consumer refuses is an error of both calls.
func TestShutdownTwiceReturnsTheRefusal(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	c, err := newRouteConnector(connectortest.NewNopSettings(metadata.Type), cfg, consumertest.NewErr(errors.New("backend says no")), wallClock{})
	require.NoError(t, err)
	require.NoError(t, c.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, c.ConsumeTraces(context.Background(), mixedTraffic()))
	err = c.Shutdown(context.Background())
	require.ErrorContains(t, err, "route metric data points refused: backend says no")
	assert.Equal(t, err, c.Shutdown(context.Background()))
}
