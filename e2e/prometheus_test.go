package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// latencies are 2,000 lognormal request durations (median 80 ms, long tail), the same on every run.
func latencies() []time.Duration {
	rng := rand.New(rand.NewPCG(11, 12))
	out := make([]time.Duration, 2000)
	for i := range out {
		out[i] = time.Duration(math.Exp(math.Log(0.08)+0.9*rng.NormFloat64()) * float64(time.Second))
	}
	return out
}

func exactQuantile(sorted []time.Duration, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))].Seconds()
}

// sendInBatches exports requests over OTLP/gRPC, 1,000 per request.
func sendInBatches(t *testing.T, col *harness.Collector, reqs []harness.Request) {
	t.Helper()
	for len(reqs) > 0 {
		n := min(len(reqs), 1000)
		td, _ := harness.Traces(reqs[:n]...)
		col.Send(t, td)
		reqs = reqs[n:]
	}
}

// queryValues runs promql and returns each sample's value keyed by the given label's value.
func queryValues(t *testing.T, prom *harness.Prometheus, promql, label string) map[string]float64 {
	t.Helper()
	samples, err := prom.Query(promql)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, s := range samples {
		out[s.Labels[label]] = s.Value
	}
	return out
}

// TestPrometheusReadsExactRouteMetricsPerEnvironment: the default config scraped by a real Prometheus with default
// settings. One service in two environments, a 10,000-path scanner, new declared routes after it, and a latency
// distribution: every count exact per environment, no scrape error, histogram_quantile within the stated 5 %.
func TestPrometheusReadsExactRouteMetricsPerEnvironment(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")})
	prom := harness.StartPrometheus(t, false, col.RouteMetrics)

	item := func(env string, status int64) harness.Request {
		return harness.Request{Service: "shop", Environment: env, Method: "GET", Path: "/items/42", Route: "/items/{item_id}", Status: status, Duration: 5 * time.Millisecond}
	}
	var reqs []harness.Request
	for range 30 {
		reqs = append(reqs, item("staging", 200))
	}
	for range 50 {
		reqs = append(reqs, item("production", 200))
	}
	for range 5 {
		reqs = append(reqs, item("production", 500))
	}
	sendInBatches(t, col, reqs)

	rng := rand.New(rand.NewPCG(1, 2))
	reqs = reqs[:0]
	for range 10_000 {
		reqs = append(reqs, harness.Request{Service: "shop", Environment: "production", Method: "GET", Path: fmt.Sprintf("/%x.php", rng.Uint64()), Status: 404, Duration: time.Millisecond})
	}
	sendInBatches(t, col, reqs)

	reqs = reqs[:0]
	for i := range 150 {
		reqs = append(reqs, harness.Request{Service: "shop", Environment: "production", Method: "GET", Path: fmt.Sprintf("/new/%d/x", i), Route: fmt.Sprintf("/new/%d/{x}", i), Status: 200, Duration: time.Millisecond})
	}
	sendInBatches(t, col, reqs)
	// The latencies in two halves, each seen by Prometheus, so that a window over the counters' increase has data.
	durations := latencies()
	for half := range 2 {
		reqs = reqs[:0]
		for _, d := range durations[half*1000 : (half+1)*1000] {
			reqs = append(reqs, harness.Request{Service: "shop", Environment: "production", Method: "GET", Path: "/reports/7", Route: "/reports/{report_id}", Status: 200, Duration: d})
		}
		sendInBatches(t, col, reqs)
		want := float64((half + 1) * 1000)
		harness.Eventually(t, 60*time.Second, "Prometheus to see the latencies", func() (bool, string) {
			got := queryValues(t, prom, `sum(http_server_route_requests_total{http_route="/reports/{report_id}"})`, "")
			return got[""] == want, fmt.Sprintf("requests of /reports/{report_id}: %v, want %v", got, want)
		})
	}

	const total = 30 + 55 + 10_000 + 150 + 2000
	harness.Eventually(t, 60*time.Second, "Prometheus to hold every request", func() (bool, string) {
		got := queryValues(t, prom, `sum(http_server_route_requests_total{service_name="shop"})`, "")
		return got[""] == total, fmt.Sprintf("sum of requests %v, want %d", got, total)
	})

	byEnv := queryValues(t, prom, `sum by (deployment_environment_name) (http_server_route_requests_total{service_name="shop", http_route="/items/{item_id}"})`, "deployment_environment_name")
	if want := map[string]float64{"staging": 30, "production": 55}; !mapsEqual(byEnv, want) {
		t.Errorf("requests of GET /items/{item_id} per environment: %v, want %v", byEnv, want)
	}
	errs := queryValues(t, prom, `sum by (deployment_environment_name) (http_server_route_errors_total{service_name="shop", http_route="/items/{item_id}"})`, "deployment_environment_name")
	if want := map[string]float64{"staging": 0, "production": 5}; !mapsEqual(errs, want) {
		t.Errorf("errors of GET /items/{item_id} per environment: %v, want %v", errs, want)
	}
	unmatched := queryValues(t, prom, `http_server_route_requests_total{http_route="{unmatched}"}`, "http_response_status_code")
	if want := map[string]float64{"404": 10_000}; !mapsEqual(unmatched, want) {
		t.Errorf("{unmatched} by status: %v, want %v", unmatched, want)
	}
	newRoutes := queryValues(t, prom, `count(http_server_route_requests_total{http_route=~"/new/.*"} == 1)`, "")
	if newRoutes[""] != 150 {
		t.Errorf("declared routes after the scanner with exactly one request each: %v, want 150", newRoutes)
	}
	if overflow := queryValues(t, prom, `http_server_route_requests_total{http_route="{overflow}"}`, ""); len(overflow) != 0 {
		t.Errorf("requests counted under {overflow}: %v", overflow)
	}

	assertQuantiles(t, prom, "classic buckets", `histogram_quantile(%g, sum by (le) (http_server_route_duration_seconds_bucket{http_route="/reports/{report_id}"}))`, durations)
	// Over a window: p99 of what arrived in the last minute (the second half, mostly), from the counters' increase.
	windowed := queryValues(t, prom, `histogram_quantile(0.99, sum by (le) (rate(http_server_route_duration_seconds_bucket{http_route="/reports/{report_id}"}[1m])))`, "")
	if p99, ok := windowed[""]; !ok || math.IsNaN(p99) || p99 <= 0 {
		t.Errorf("histogram_quantile over rate(...[1m]): %v", windowed)
	} else {
		t.Logf("p99 over the last minute (rate of the buckets): %.4fs", p99)
	}
	assertCleanScrapes(t, prom)
}

// TestNativeHistogramPrometheusReadsExponentialHistogram: with ROUTE_HISTOGRAM=exponential and a Prometheus started
// with --enable-feature=native-histograms, the route histogram is one native histogram per series.
func TestNativeHistogramPrometheusReadsExponentialHistogram(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")}, "ROUTE_HISTOGRAM=exponential")
	prom := harness.StartPrometheus(t, true, col.RouteMetrics)
	durations := latencies()
	reqs := make([]harness.Request, 0, len(durations))
	for _, d := range durations {
		reqs = append(reqs, harness.Request{Service: "shop", Environment: "production", Method: "GET", Path: "/reports/7", Route: "/reports/{report_id}", Status: 200, Duration: d})
	}
	sendInBatches(t, col, reqs)
	harness.Eventually(t, 60*time.Second, "Prometheus to hold the native histogram", func() (bool, string) {
		got := queryValues(t, prom, `histogram_count(sum(http_server_route_duration_seconds{http_route="/reports/{report_id}"}))`, "")
		return got[""] == float64(len(durations)), fmt.Sprintf("histogram_count %v", got)
	})
	assertQuantiles(t, prom, "native histogram", `histogram_quantile(%g, sum(http_server_route_duration_seconds{http_route="/reports/{report_id}"}))`, durations)
	assertCleanScrapes(t, prom)
}

// assertQuantiles checks p50, p95 and p99 from promqlFormat (%g takes the quantile) within 5 % of the exact ones.
func assertQuantiles(t *testing.T, prom *harness.Prometheus, what, promqlFormat string, durations []time.Duration) {
	t.Helper()
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	for _, q := range []float64{0.5, 0.95, 0.99} {
		got := queryValues(t, prom, fmt.Sprintf(promqlFormat, q), "")[""]
		exact := exactQuantile(sorted, q)
		relErr := math.Abs(got-exact) / exact
		t.Logf("%s p%g: exact %.4fs, Prometheus %.4fs, error %.2f%%", what, q*100, exact, got, relErr*100)
		if relErr > 0.05 {
			t.Errorf("p%g from the %s: %.4fs against exact %.4fs (%.1f%% > 5%%)", q*100, what, got, exact, relErr*100)
		}
	}
}

// assertCleanScrapes: every scrape succeeded and Prometheus dropped no sample as a duplicate series.
func assertCleanScrapes(t *testing.T, prom *harness.Prometheus) {
	t.Helper()
	if errs, err := prom.TargetErrors(); err != nil || errs != "" {
		t.Errorf("scrape errors: %s %v", errs, err)
	}
	self, err := harness.Get("http://" + prom.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(self, "\n") {
		if strings.HasPrefix(line, "prometheus_target_scrapes_sample_duplicate_timestamp_total ") && !strings.HasSuffix(line, " 0") {
			t.Errorf("Prometheus dropped duplicate series: %s", line)
		}
	}
}

func mapsEqual(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
