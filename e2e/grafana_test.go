package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

type grafanaDashboard struct {
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID      int    `json:"id"`
		Title   string `json:"title"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// grafanaVariables are what a person picks on the dashboard, and what Grafana puts for its own variables.
var grafanaVariables = strings.NewReplacer(
	"$service", "shop", "$environment", "production", "$route", ".*",
	"$__rate_interval", "1m", "$__range", "5m",
)

// TestGrafanaDashboardPanelsAnswerWithTheKnownTraffic runs every panel query of deploy/grafana/otelcol-apm.json
// against a real Prometheus scraping the gateway with known traffic: no panel without data, the counts table equal
// to what was sent, rates in the proportions sent, p99 within the classic buckets' 5 %.
func TestGrafanaDashboardPanelsAnswerWithTheKnownTraffic(t *testing.T) {
	raw, err := os.ReadFile(harness.ConfigPath("deploy/grafana/otelcol-apm.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash grafanaDashboard
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/otelcol-apm.json: %v", err)
	}
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")})
	prom := harness.StartPrometheus(t, false, col.RouteMetrics)

	req := func(path, route string, status int64, d time.Duration) harness.Request {
		return harness.Request{Service: "shop", Environment: "production", Method: "GET", Path: path, Route: route, Status: status, Duration: d}
	}
	// One request per route first, seen by Prometheus, so that rates over the measured traffic exist.
	sendInBatches(t, col, []harness.Request{req("/items/1", "/items/{item_id}", 200, 4*time.Millisecond),
		req("/checkout", "/checkout", 500, 30*time.Millisecond), req("/reports/1", "/reports/{report_id}", 200, 80*time.Millisecond)})
	total := func() float64 {
		return queryValues(t, prom, `sum(http_server_route_requests_total{service_name="shop"})`, "")[""]
	}
	harness.Eventually(t, 60*time.Second, "the first requests in Prometheus", func() (bool, string) { return total() == 3, fmt.Sprint(total()) })
	time.Sleep(2 * time.Second)

	durations := latencies()[:1000]
	var reqs []harness.Request
	for i := range 200 {
		reqs = append(reqs, req(fmt.Sprintf("/items/%d", i), "/items/{item_id}", 200, 4*time.Millisecond))
	}
	for range 20 {
		reqs = append(reqs, req("/checkout", "/checkout", 500, 30*time.Millisecond))
	}
	for _, d := range durations {
		reqs = append(reqs, req("/reports/7", "/reports/{report_id}", 200, d))
	}
	sendInBatches(t, col, reqs)
	harness.Eventually(t, 60*time.Second, "every request in Prometheus", func() (bool, string) { return total() == 1223, fmt.Sprint(total()) })
	// Breakdowns are recorded a grace (5 s) after their requests arrived.
	broken := func() float64 {
		return queryValues(t, prom, `sum(http_server_route_breakdown_requests_total{service_name="shop", breakdown_category="self"})`, "")[""]
	}
	harness.Eventually(t, 60*time.Second, "every request's breakdown in Prometheus", func() (bool, string) { return broken() == 1223, fmt.Sprint(broken()) })
	time.Sleep(2 * time.Second)

	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		q := v.Query.(map[string]any)["query"].(string)
		metric := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
		selector, label, _ := strings.Cut(metric, ", ")
		values := queryValues(t, prom, fmt.Sprintf("count by (%s) (%s)", label, grafanaVariables.Replace(selector)), label)
		if len(values) == 0 {
			t.Errorf("variable %s (%s) offers no value", v.Name, q)
		}
	}
	results := map[string][]harness.Sample{} // "panel id/refId"
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			expr := grafanaVariables.Replace(target.Expr)
			samples, err := prom.Query(expr)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, target.RefID, err)
				continue
			}
			if len(samples) == 0 {
				t.Errorf("panel %q %s has no data: %s", p.Title, target.RefID, expr)
			}
			results[fmt.Sprintf("%d/%s", p.ID, target.RefID)] = samples
		}
	}
	byRoute := func(key string) map[string]float64 {
		out := map[string]float64{}
		for _, s := range results[key] {
			out[s.Labels["http_route"]] += s.Value
		}
		return out
	}
	if got, want := byRoute("6/A"), map[string]float64{"/items/{item_id}": 201, "/checkout": 21, "/reports/{report_id}": 1001}; !mapsEqual(got, want) {
		t.Errorf("requests table: %v, want %v", got, want)
	}
	if got, want := byRoute("6/B"), map[string]float64{"/items/{item_id}": 0, "/checkout": 21, "/reports/{report_id}": 0}; !mapsEqual(got, want) {
		t.Errorf("errors table: %v, want %v", got, want)
	}
	rates := byRoute("1/A")
	if r := rates["/reports/{report_id}"] / rates["/items/{item_id}"]; math.Abs(r-5) > 0.05 {
		t.Errorf("requests per second by route %v: reports/items %.3f, sent 1000/200", rates, r)
	}
	if ratio := byRoute("4/A")["/checkout"]; ratio != 1 {
		t.Errorf("error ratio of /checkout: %v, want 1", ratio)
	}
	impact := byRoute("5/A")
	var shares float64
	for _, v := range impact {
		shares += v
	}
	if math.Abs(shares-1) > 0.01 || impact["/reports/{report_id}"] < impact["/checkout"] {
		t.Errorf("impact shares %v: want them to add up to 1, reports first", impact)
	}
	// These requests have no child spans: all their time is their own.
	for _, s := range results["7/A"] {
		if s.Labels["breakdown_category"] != "self" || !(s.Value > 0) {
			t.Errorf("where the time goes: %v, want only the requests' own time", results["7/A"])
		}
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	exact := exactQuantile(sorted, 0.99)
	for _, s := range results["3/C"] { // p99
		if s.Labels["http_route"] != "/reports/{report_id}" {
			continue
		}
		relErr := math.Abs(s.Value-exact) / exact
		t.Logf("dashboard p99 of /reports/{report_id}: %.4fs, exact %.4fs, error %.2f%%", s.Value, exact, relErr*100)
		if relErr > 0.05 {
			t.Errorf("p99 panel: %.4fs against exact %.4fs", s.Value, exact)
		}
	}
}
