package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// monitorSeries is one labelled series of Jaeger's metrics API (/api/metrics/calls, /latencies): the last value.
type monitorSeries map[string]float64

// jaegerMonitor calls the API the Monitor tab calls and returns each operation's latest value.
func jaegerMonitor(j *harness.Jaeger, path string, params url.Values) (monitorSeries, error) {
	params.Set("service", "shop")
	params.Set("groupByOperation", "true")
	params.Set("spanKind", "server")
	params.Set("endTs", fmt.Sprint(time.Now().UnixMilli()))
	params.Set("lookback", "300000")
	params.Set("step", "1000")
	params.Set("ratePer", "600000")
	body, err := harness.Get("http://" + j.Query + "/api/metrics/" + path + "?" + params.Encode())
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, body)
	}
	var resp struct {
		Metrics []struct {
			Labels []struct {
				Name, Value string
			} `json:"labels"`
			MetricPoints []struct {
				GaugeValue struct {
					DoubleValue any `json:"doubleValue"`
				} `json:"gaugeValue"`
			} `json:"metricPoints"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, fmt.Errorf("%w: %s", err, body)
	}
	out := monitorSeries{}
	for _, m := range resp.Metrics {
		op := ""
		for _, l := range m.Labels {
			if l.Name == "operation" {
				op = l.Value
			}
		}
		for i := len(m.MetricPoints) - 1; i >= 0; i-- {
			if v, ok := m.MetricPoints[i].GaugeValue.DoubleValue.(float64); ok && !math.IsNaN(v) {
				out[op] = v
				break
			}
		}
	}
	return out, nil
}

// TestJaegerMonitorTabReadsRouteNamedSpanMetrics: development.yaml writes span metrics in the layout Jaeger's Monitor
// tab reads; a real Prometheus scrapes them and a real Jaeger v2, configured with that Prometheus as its metrics
// storage, answers its Monitor API per operation — operations named by route, not one per raw URL.
func TestJaegerMonitorTabReadsRouteNamedSpanMetrics(t *testing.T) {
	metricsAddr := harness.Addr(t) // the collector's Prometheus endpoint, known before anything starts
	prom := harness.StartPrometheus(t, false, metricsAddr)
	jaeger := harness.StartJaeger(t, "JAEGER_PROMETHEUS_URL=http://"+prom.Addr)
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/development.yaml")},
		"JAEGER_OTLP_ENDPOINT="+jaeger.OTLP, "ROUTE_METRICS_ENDPOINT="+metricsAddr)

	// A first request per route creates the series; Prometheus sees them before the measured traffic, so that the
	// rates Jaeger asks for have an increase to measure.
	item := func(i int, d time.Duration) harness.Request {
		return harness.Request{Service: "shop", Environment: "development", Method: "GET", Path: fmt.Sprintf("/items/%d", i), Route: "/items/{item_id}", Status: 200, Duration: d}
	}
	report := func(d time.Duration) harness.Request {
		return harness.Request{Service: "shop", Environment: "development", Method: "GET", Path: "/reports/7", Route: "/reports/{report_id}", Status: 200, Duration: d}
	}
	sendInBatches(t, col, []harness.Request{item(0, 5*time.Millisecond), report(50 * time.Millisecond)})
	callsTotal := func() map[string]float64 {
		return queryValues(t, prom, `sum by (span_name) (traces_span_metrics_calls_total{service_name="shop", span_kind="SPAN_KIND_SERVER"})`, "span_name")
	}
	harness.Eventually(t, 60*time.Second, "the first requests in Prometheus", func() (bool, string) {
		got := callsTotal()
		return got["GET /items/{item_id}"] == 1 && got["GET /reports/{report_id}"] == 1, fmt.Sprintf("%v", got)
	})
	time.Sleep(2 * time.Second) // a few scrapes of the first values

	durations := latencies()[:1000]
	var reqs []harness.Request
	for i := range 300 {
		reqs = append(reqs, item(i+1, 5*time.Millisecond))
	}
	for _, d := range durations {
		reqs = append(reqs, report(d))
	}
	sendInBatches(t, col, reqs)
	harness.Eventually(t, 60*time.Second, "every request in Prometheus", func() (bool, string) {
		got := callsTotal()
		return got["GET /items/{item_id}"] == 301 && got["GET /reports/{report_id}"] == 1001, fmt.Sprintf("%v", got)
	})
	if got := callsTotal(); len(got) != 2 {
		t.Errorf("server operations of shop in the span metrics: %v, want the two routes only", got)
	}

	// Jaeger's Monitor API: call rates over a 10-minute window, so each operation's rate times 600 s is its
	// increase, extrapolated by Prometheus to the window's edges: the ratio between operations is exact.
	var calls monitorSeries
	harness.Eventually(t, 30*time.Second, "Jaeger's Monitor API to report both operations", func() (bool, string) {
		var err error
		calls, err = jaegerMonitor(jaeger, "calls", url.Values{})
		return err == nil && calls["GET /items/{item_id}"] > 0 && calls["GET /reports/{report_id}"] > 0, fmt.Sprintf("%v %v", calls, err)
	})
	ratio := calls["GET /reports/{report_id}"] / calls["GET /items/{item_id}"]
	t.Logf("Jaeger calls: %v (per second over 10 min); reports/items %.4f, sent 1000/300 = %.4f", calls, ratio, 1000.0/300)
	if math.Abs(ratio-1000.0/300)/(1000.0/300) > 0.01 {
		t.Errorf("Jaeger's call rates %v: ratio %.4f, want %.4f", calls, ratio, 1000.0/300)
	}
	for op, n := range map[string]float64{"GET /items/{item_id}": 300, "GET /reports/{report_id}": 1000} {
		if got := calls[op] * 600; got < n*0.5 || got > n*2 {
			t.Errorf("%s: rate x window %.0f, sent %.0f: not the same traffic", op, got, n)
		}
	}

	// p95 through Jaeger against the exact p95 of what was sent, and against histogram_quantile over the same
	// buckets computed here (the histogram's own error): Jaeger adds nothing to it.
	lat, err := jaegerMonitor(jaeger, "latencies", url.Values{"quantile": {"0.95"}})
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	exact := exactQuantile(sorted, 0.95) * 1000
	got := lat["GET /reports/{report_id}"]
	relErr := math.Abs(got-exact) / exact
	t.Logf("Jaeger p95 of GET /reports/{report_id}: %.1f ms, exact %.1f ms, error %.1f%%", got, exact, relErr*100)
	if relErr > 0.25 {
		t.Errorf("p95 through Jaeger %.1f ms against exact %.1f ms (%.1f%% > 25%%, the buckets' stated error)", got, exact, relErr*100)
	}
	assertCleanScrapes(t, prom)
}
