package routelatencyconnector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

func sloConfig(cfg *Config) {
	cfg.SLOs = []slo.Objective{
		{Name: "orders-latency", Service: "shop", Route: "/orders/*", Target: 99.9, Indicator: slo.Latency, Threshold: 300 * time.Millisecond},
		{Name: "shop-availability", Service: "shop", Target: 99.5, Indicator: slo.Availability, BadStatusCodes: []int{429}},
	}
}

// The hand count: 299, 300, 301 ms, 1.2 s and a 50 ms 500 on a route under a 300 ms objective give good 2,
// bad 3; the availability objective over the whole service counts the 500 and the 429 bad; a sampled span counts
// as the requests it stands for.
func sloTraffic() []span {
	order := func(d time.Duration, code int64) span {
		return span{service: "shop", env: "production", name: "GET /orders/{order_id}", duration: d,
			attrs: map[string]any{"http.request.method": "GET", "http.route": "/orders/{order_id}", "url.path": "/orders/1", "http.response.status_code": code}}
	}
	return []span{
		order(299*time.Millisecond, 200), order(300*time.Millisecond, 200), order(301*time.Millisecond, 200),
		order(1200*time.Millisecond, 200), order(50*time.Millisecond, 500),
		{service: "shop", env: "production", name: "GET /health", duration: time.Millisecond, attrs: map[string]any{"http.request.method": "GET", "http.route": "/health", "url.path": "/health", "http.response.status_code": int64(429)}},
		{service: "other", name: "GET /orders/{order_id}", duration: time.Second, attrs: map[string]any{"http.request.method": "GET", "http.route": "/orders/{order_id}", "url.path": "/orders/1", "http.response.status_code": int64(200)}},
	}
}

func sloEvents(md pmetric.Metrics) map[string]int64 {
	out := map[string]int64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := 0; j < ms.Len(); j++ {
			if ms.At(j).Name() != slo.MetricEvents {
				continue
			}
			dps := ms.At(j).Sum().DataPoints()
			for k := 0; k < dps.Len(); k++ {
				a := dps.At(k).Attributes().AsRaw()
				out[a["slo.name"].(string)+" "+a["http.route"].(string)+" "+a["outcome"].(string)] += dps.At(k).IntValue()
			}
		}
	}
	return out
}

func TestSLOEventsCountGoodAndBadByHand(t *testing.T) {
	tc := newTestConnector(t, sloConfig)
	require.NoError(t, tc.ConsumeTraces(t.Context(), traces(sloTraffic()...)))
	md := tc.flushAt(15 * time.Second)
	assert.Equal(t, map[string]int64{
		"orders-latency /orders/{order_id} good":    2,
		"orders-latency /orders/{order_id} bad":     3,
		"shop-availability /orders/{order_id} good": 4,
		"shop-availability /orders/{order_id} bad":  1,
		"shop-availability /health good":            0,
		"shop-availability /health bad":             1,
	}, sloEvents(md))
	path := filepath.Join("testdata", "slo_cumulative.yaml")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		require.NoError(t, golden.WriteMetricsToFile(path, sloOnly(md), golden.SkipMetricTimestampNormalization()))
	}
	want, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	require.NoError(t, pmetrictest.CompareMetrics(want, sloOnly(md), pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder()))

	// Cumulative: a second interval adds to the first.
	require.NoError(t, tc.ConsumeTraces(t.Context(), traces(sloTraffic()[0])))
	assert.Equal(t, int64(3), sloEvents(tc.flushAt(30 * time.Second))["orders-latency /orders/{order_id} good"])
}

func TestSLOEventsAsDeltasAddUpToWhatWasSent(t *testing.T) {
	tc := newTestConnector(t, func(cfg *Config) {
		sloConfig(cfg)
		cfg.AggregationTemporality = temporalityDelta
	})
	total := map[string]int64{}
	for i := range 3 {
		require.NoError(t, tc.ConsumeTraces(t.Context(), traces(sloTraffic()...)))
		for k, v := range sloEvents(tc.flushAt(time.Duration(i+1) * 15 * time.Second)) {
			total[k] += v
		}
	}
	assert.Equal(t, int64(6), total["orders-latency /orders/{order_id} good"])
	assert.Equal(t, int64(9), total["orders-latency /orders/{order_id} bad"])
	assert.Empty(t, sloEvents(tc.flushAt(60*time.Second)), "an idle interval sends no delta")
}

// A latency objective's threshold is one of the classic histogram's bounds.
func TestLatencyThresholdIsAHistogramBound(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	sloConfig(cfg)
	cfg.Histogram.Type = histogramExplicit
	cfg.Histogram.Explicit.Buckets = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second}
	cfg.SLOs[1] = slo.Objective{Name: "fast", Target: 99, Indicator: slo.Latency, Threshold: 250 * time.Millisecond}
	assert.Equal(t, []float64{0.1, 0.25, 0.3, 1}, storeConfig(cfg).ExplicitBounds, "sorted, once each")
}

// sloOnly is the resources that hold slo.* metrics (Counts writes its own).
func sloOnly(md pmetric.Metrics) pmetric.Metrics {
	out := pmetric.NewMetrics()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		if name := rm.ScopeMetrics().At(0).Metrics().At(0).Name(); strings.HasPrefix(name, "slo.") {
			rm.CopyTo(out.ResourceMetrics().AppendEmpty())
		}
	}
	return out
}

// The route page's SLO view over the history it holds: 1,000 order reads, 30 over 300 ms (3 %, thirty times a
// 99.9 % budget): compliance 97 %, the budget overspent, a burn rate of 30 over 5 minutes and the hour: critical
// (above the page factor 14.4 on both windows of the 1h/5m alert).
func TestSLOViewOnTheDashboard(t *testing.T) {
	tc := newTestConnector(t, func(cfg *Config) {
		sloConfig(cfg)
		cfg.Dashboard.Endpoint = "127.0.0.1:0"
		cfg.SLOs[0].MinRequestsPerHour = 100
	})
	var spans []span
	for i := range 1000 {
		d := 100 * time.Millisecond
		if i%100 < 3 {
			d = 400 * time.Millisecond
		}
		spans = append(spans, sloTraffic()[0])
		spans[i].duration = d
	}
	require.NoError(t, tc.ConsumeTraces(t.Context(), traces(spans...)))
	tc.flushAt(15 * time.Second)

	rec := httptest.NewRecorder()
	tc.dashboard.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/slos?service=shop&route=/orders/{order_id}", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body struct {
		Objectives []struct {
			Name, State     string
			Good, Bad       uint64
			Compliance      float64
			BudgetLeft      float64  `json:"budget_left"`
			ThresholdMs     *float64 `json:"threshold_ms"`
			TooFew          bool     `json:"too_few"`
			RequestsPerHour float64  `json:"requests_per_hour"`
			Burn            []struct {
				Window string
				Rate   *float64
			}
		}
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Objectives, 2)
	o := body.Objectives[0]
	assert.Equal(t, "orders-latency", o.Name)
	assert.Equal(t, uint64(970), o.Good)
	assert.Equal(t, uint64(30), o.Bad)
	assert.InDelta(t, 0.97, o.Compliance, 1e-9)
	assert.InDelta(t, 1-30/(1000*0.001), o.BudgetLeft, 1e-9)
	assert.Equal(t, 300.0, *o.ThresholdMs)
	assert.Equal(t, "critical", o.State)
	assert.False(t, o.TooFew, "1,000 requests in 15 s")
	assert.InDelta(t, 1000*3600/30.0, o.RequestsPerHour, 1e-6, "over the one 30 s slice the history covers, not an hour's roll-up slice")
	require.Equal(t, "5m", o.Burn[0].Window)
	assert.InDelta(t, 30, *o.Burn[0].Rate, 1e-9)
	assert.InDelta(t, 30, *o.Burn[2].Rate, 1e-9, "1h")
	assert.InDelta(t, 30, *o.Burn[3].Rate, 1e-9, "6h, from the 10-minute roll-ups")
	assert.Equal(t, "shop-availability", body.Objectives[1].Name)
	assert.Equal(t, "ok", body.Objectives[1].State)
}
