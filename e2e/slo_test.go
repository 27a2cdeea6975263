package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestSLOBurnPagesARealAlertmanager: the example service behind the gateway with environments/slos.yaml serves
// checkouts that all fail (it does without LATENCY=realistic), item reads well under their 100 ms objective and
// reports under their 1 s one. A real Prometheus scrapes the gateway, evaluates the checked-in rules
// (deploy/prometheus/slo-rules.yaml) and sends alerts to a real Alertmanager: the page for checkout-availability
// on POST /checkout arrives with its labels, and no alert for the healthy objectives; the good and bad counts in
// PromQL are the requests sent.
func TestSLOBurnPagesARealAlertmanager(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/slos.yaml")},
		"ROUTE_METRICS_FLUSH_INTERVAL=1s")
	am := harness.StartAlertmanager(t)
	prom := harness.StartPrometheusWith(t, harness.PrometheusOptions{
		RuleFiles: []string{harness.ConfigPath("deploy/prometheus/slo-rules.yaml")}, Alertmanager: am.Addr,
	}, col.RouteMetrics)
	shop := harness.StartShopAPI(t, "shop-slo", "development", col, "SLOW_DELAY=50ms")

	// Steady traffic until the page arrives: rate() needs a counter that grows between scrapes.
	var checkouts, items, reports int
	send := func(method, path string, want int) {
		req, _ := http.NewRequest(method, "http://"+shop.Addr+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: %v %v, want %d", method, path, err, resp, want)
		}
		resp.Body.Close()
	}
	var page harness.WebhookAlert
	harness.Eventually(t, 120*time.Second, "the page for checkout-availability at Alertmanager's webhook", func() (bool, string) {
		for range 10 {
			send(http.MethodPost, "/checkout", http.StatusInternalServerError)
			send(http.MethodGet, "/items/7", http.StatusOK)
			send(http.MethodGet, "/reports/slow", http.StatusOK)
			checkouts, items, reports = checkouts+1, items+1, reports+1
		}
		for _, a := range am.Received() {
			if a.Labels["slo"] == "checkout-availability" && a.Labels["severity"] == "page" {
				page = a
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d alerts so far, %d checkouts sent", len(am.Received()), checkouts)
	})
	shop.Stop() // flushes its spans

	// /items/0 answered the readiness probe once: it counts too.
	want := map[string]float64{
		"checkout-availability bad": float64(checkouts), "checkout-availability good": 0,
		"items-latency good": float64(items + 1), "items-latency bad": 0,
		"reports-latency good": float64(reports), "reports-latency bad": 0,
	}
	harness.Eventually(t, 60*time.Second, "the exact good and bad counts in Prometheus", func() (bool, string) {
		samples, err := prom.Query(`sum by (slo_name, outcome) (slo_events_total{service_name="shop-slo"})`)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]float64{}
		for _, s := range samples {
			got[s.Labels["slo_name"]+" "+s.Labels["outcome"]] = s.Value
		}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("got %v, want %v", got, want)
	})
	for k, v := range map[string]string{
		"alertname": "SLOErrorBudgetBurn", "sloth_severity": "page", "sloth_id": "checkout-availability",
		"service_name": "shop-slo", "deployment_environment_name": "development", "http_request_method": "POST", "http_route": "/checkout",
	} {
		if page.Labels[k] != v {
			t.Errorf("the page's %s is %q, want %q (labels %v)", k, page.Labels[k], v, page.Labels)
		}
	}
	if !strings.Contains(page.Annotations["summary"], "POST /checkout") {
		t.Errorf("the page's summary names no route: %q", page.Annotations["summary"])
	}
	// Rules are evaluated every second and Alertmanager waits a second per group: give the healthy objectives as
	// long again before saying they stayed quiet.
	time.Sleep(5 * time.Second)
	for _, a := range am.Received() {
		if a.Labels["slo"] != "checkout-availability" {
			t.Errorf("an alert for a healthy objective: %v", a.Labels)
		}
	}
}
