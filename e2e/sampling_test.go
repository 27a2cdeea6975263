package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestDatadogSamplingCutsWhatShipsNotWhatCounts sends the same 1,000 requests (20 failing, 10 slow) through two
// production gateways, one shipping every trace to Datadog and one with the shipped sampling policy at 10 %: the
// sampled one ships every error and every slow request and about a tenth of the rest, and both report the same APM
// stats and the same route metrics, equal to what was sent.
func TestDatadogSamplingCutsWhatShipsNotWhatCounts(t *testing.T) {
	var reqs []harness.Request
	for i := range 1000 {
		r := harness.Request{Service: "shop-prod", Environment: "production", Method: "GET", Path: fmt.Sprintf("/items/%d", i), Route: "/items/{item_id}", Status: 200, Duration: 5 * time.Millisecond}
		switch {
		case i%50 == 0:
			r.Method, r.Path, r.Route, r.Status = "POST", "/checkout", "/checkout", 500
		case i%100 == 1:
			r.Path, r.Route, r.Duration = "/reports/7", "/reports/{report_id}", 800*time.Millisecond
		}
		reqs = append(reqs, r)
	}
	type run struct {
		percentage string
		intake     *ddintake.Intake
		col        *harness.Collector
	}
	runs := []*run{{percentage: "100"}, {percentage: "10"}}
	for _, r := range runs {
		intake, err := ddintake.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = intake.Close() })
		r.intake = intake
		r.col = harness.StartSecureCollector(t, configs("environments/production.yaml"), "DD_API_KEY="+testAPIKey, "DD_INTAKE_URL="+intake.URL,
			"SLOW_REQUEST_THRESHOLD=500ms", "SAMPLING_DECISION_WAIT=2s", "DATADOG_SAMPLING_PERCENTAGE="+r.percentage)
		sendInBatches(t, r.col, reqs)
	}

	statsOf := func(in *ddintake.Intake) (hits, errs map[string]uint64) {
		hits, errs = map[string]uint64{}, map[string]uint64{}
		for _, g := range in.StatsGroups() {
			if g.Service == "shop-prod" && g.SpanKind == "server" {
				hits[g.Resource] += g.Hits
				errs[g.Resource] += g.Errors
			}
		}
		return hits, errs
	}
	routeMetricsOf := func(in *ddintake.Intake) map[string]float64 {
		out := map[string]float64{}
		for _, p := range in.Points() {
			if p.Metric == "http.server.route.requests" && !p.Sketch {
				out[p.Tag("http.request.method")+" "+p.Tag("http.route")] += p.Value
			}
		}
		return out
	}
	wantHits := map[string]uint64{"GET /items/{item_id}": 970, "POST /checkout": 20, "GET /reports/{report_id}": 10}
	for _, r := range runs {
		harness.Eventually(t, 60*time.Second, "APM stats and route metrics at "+r.percentage+" %", func() (bool, string) {
			hits, errs := statsOf(r.intake)
			metrics := routeMetricsOf(r.intake)
			ok := errs["POST /checkout"] == 20 && metrics["GET /items/{item_id}"] == 970 && metrics["POST /checkout"] == 20 && metrics["GET /reports/{report_id}"] == 10
			for k, n := range wantHits {
				ok = ok && hits[k] == n
			}
			return ok, fmt.Sprintf("stats hits %v errors %v, route metrics %v; %s", hits, errs, metrics, r.intake.Summary())
		})
	}

	// What ships: wait until each intake's span count holds still past the decision wait.
	shipped := func(in *ddintake.Intake) map[string][]ddintake.Span {
		out := map[string][]ddintake.Span{}
		for _, s := range in.Spans() {
			if s.Service == "shop-prod" {
				out[s.Resource] = append(out[s.Resource], s)
			}
		}
		return out
	}
	total := func(m map[string][]ddintake.Span) int {
		n := 0
		for _, v := range m {
			n += len(v)
		}
		return n
	}
	harness.Eventually(t, 60*time.Second, "every trace at 100 %", func() (bool, string) {
		n := total(shipped(runs[0].intake))
		return n == 1000, fmt.Sprintf("%d spans shipped", n)
	})
	last, stableSince := -1, time.Now()
	harness.Eventually(t, 60*time.Second, "the sampled intake to settle", func() (bool, string) {
		n := total(shipped(runs[1].intake))
		if n != last {
			last, stableSince = n, time.Now()
		}
		return n > 0 && time.Since(stableSince) > 4*time.Second, fmt.Sprintf("%d spans shipped", n)
	})
	sampled := shipped(runs[1].intake)
	rest := len(sampled["GET /items/{item_id}"])
	t.Logf("FIGURES sampling: per 1,000 requests, spans shipped to Datadog: %d with DATADOG_SAMPLING_PERCENTAGE=100, %d with the default 10 (20 errors: %d shipped, 10 slow: %d shipped, 970 others: %d shipped); APM stats and route metrics identical in both",
		total(shipped(runs[0].intake)), total(sampled), len(sampled["POST /checkout"]), len(sampled["GET /reports/{report_id}"]), rest)
	if len(sampled["POST /checkout"]) != 20 || len(sampled["GET /reports/{report_id}"]) != 10 {
		t.Errorf("the sampled route did not keep every error (%d of 20) and every slow request (%d of 10)", len(sampled["POST /checkout"]), len(sampled["GET /reports/{report_id}"]))
	}
	if sigma := math.Sqrt(970 * 0.1 * 0.9); math.Abs(float64(rest)-97) > 4*sigma {
		t.Errorf("%d of 970 ordinary requests shipped at 10 %%: outside 97 ± %.0f", rest, 4*sigma)
	}
	for i, r := range runs {
		hits, errs := statsOf(r.intake)
		for k, n := range wantHits {
			if hits[k] != n {
				t.Errorf("run %d: APM stats hits of %s = %d, want %d", i, k, hits[k], n)
			}
		}
		if errs["POST /checkout"] != 20 {
			t.Errorf("run %d: APM stats errors of POST /checkout = %d, want 20", i, errs["POST /checkout"])
		}
	}
}

// Two production replicas behind one Datadog intake (as behind a load balancer): their route metrics are deltas
// without a replica tag, so Datadog adds them into one series per route whose sum is what was sent.
func TestDatadogDeltasOfReplicasAddUp(t *testing.T) {
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	var replicas []*harness.Collector
	for range 2 {
		replicas = append(replicas, harness.StartSecureCollector(t, configs("environments/production.yaml"), "DD_API_KEY="+testAPIKey,
			"DD_INTAKE_URL="+intake.URL, "SAMPLING_DECISION_WAIT=2s"))
	}
	sent := map[string]float64{}
	for i := range 2 {
		var reqs []harness.Request
		for j := range 300 + 200*i { // 300 to one replica, 500 to the other
			r := harness.Request{Service: "shop-fleet", Environment: "production", Method: "GET", Path: fmt.Sprintf("/items/%d", j), Route: "/items/{item_id}", Status: 200, Duration: 5 * time.Millisecond}
			if j%10 == 0 {
				r.Method, r.Path, r.Route = "POST", "/checkout", "/checkout"
			}
			sent[r.Method+" "+r.Route]++
			reqs = append(reqs, r)
		}
		sendInBatches(t, replicas[i], reqs)
	}
	harness.Eventually(t, 60*time.Second, "the replicas' deltas to add up at the intake", func() (bool, string) {
		got := map[string]float64{}
		for _, p := range intake.Points() {
			if p.Metric == "http.server.route.requests" && !p.Sketch && p.Tag("service.name") == "shop-fleet" {
				got[p.Tag("http.request.method")+" "+p.Tag("http.route")] += p.Value
				if id := p.Tag("collector.instance.id"); id != "" {
					return false, "a Datadog route metric carries collector.instance.id " + id
				}
			}
		}
		return got["GET /items/{item_id}"] == sent["GET /items/{item_id}"] && got["POST /checkout"] == sent["POST /checkout"],
			fmt.Sprintf("intake %v, sent %v", got, sent)
	})
}
