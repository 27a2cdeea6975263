package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestErrorGroupsFromTheGoSDK: the example service (OpenTelemetry Go SDK, otelhttp) fails its checkouts in two
// ways, recording each with span.RecordError and its stack trace, and handles an exception on another route. The
// API groups exactly those, with exact counts, their top application frame and the customer's email masked
// (nowhere in the API, the page's data or the metrics Prometheus scrapes); redeployed with a third way to fail,
// that group is the one marked new.
func TestErrorGroupsFromTheGoSDK(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")}, "DASHBOARD_SLICE=3s")
	drive := func(version, failures string, checkouts, orders int) {
		shop := harness.StartShopAPI(t, "shop-err", "development", col, "CHECKOUT_FAILURES="+failures,
			"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=development,service.version="+version)
		for range checkouts {
			resp, err := http.Post("http://"+shop.Addr+"/checkout", "application/json", nil)
			if err != nil || resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("POST /checkout: %v %v", err, resp)
			}
			resp.Body.Close()
		}
		for range orders {
			resp, err := http.Get("http://" + shop.Addr + "/users/7/orders")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /users/7/orders: %v %v", err, resp)
			}
			resp.Body.Close()
		}
		shop.Stop()
	}
	type group struct {
		Route, Type       string
		Count, Failed     int
		Handled           int
		TopFrame          string `json:"top_frame"`
		New               bool
		FirstVersion      string `json:"first_version"`
		ExampleMessage    string `json:"example_message"`
		ExampleStacktrace string `json:"example_stacktrace"`
	}
	groups := func(want int) (map[string]group, string) {
		var body struct{ Groups []group }
		var text string
		harness.Eventually(t, 30*time.Second, fmt.Sprintf("%d requests with errors in /api/errors", want), func() (bool, string) {
			var err error
			text, err = harness.Get("http://" + col.Dashboard + "/api/errors?service=shop-err&environment=development")
			if err == nil {
				err = json.Unmarshal([]byte(text), &body)
			}
			n := 0
			for _, g := range body.Groups {
				n += g.Count
			}
			return err == nil && n == want, fmt.Sprint(n, err)
		})
		out := map[string]group{}
		for _, g := range body.Groups {
			out[g.Route+" "+g.Type] = g
		}
		return out, text
	}

	drive("1.0.0", "declined,timeout", 20, 15)
	got, text := groups(35)
	for key, want := range map[string][3]int{
		"/checkout *main.PaymentDeclinedError":                          {10, 10, 0},
		"/checkout *main.GatewayTimeoutError":                           {10, 10, 0},
		"/users/{user_id}/orders *main.RecommendationsUnavailableError": {15, 0, 15},
	} {
		g, ok := got[key]
		if !ok || g.Count != want[0] || g.Failed != want[1] || g.Handled != want[2] {
			t.Errorf("%s: %+v, want count %d, failed %d, handled %d (groups %v)", key, g, want[0], want[1], want[2], got)
		}
		if !strings.HasPrefix(g.TopFrame, "main.") || !strings.Contains(g.ExampleStacktrace, "main.") {
			t.Errorf("%s: top frame %q, stack %q: want the handler's frame", key, g.TopFrame, g.ExampleStacktrace)
		}
	}
	if len(got) != 3 {
		t.Errorf("groups %v, want the three kinds", got)
	}
	if strings.Contains(text, "alice@example.com") || !strings.Contains(got["/checkout *main.PaymentDeclinedError"].ExampleMessage, "<masked>") {
		t.Errorf("the email reached the API: %s", got["/checkout *main.PaymentDeclinedError"].ExampleMessage)
	}
	harness.Eventually(t, 10*time.Second, "the exceptions counter, without the email, in the route metrics", func() (bool, string) {
		metrics, err := harness.Get("http://" + col.RouteMetrics + "/metrics")
		return err == nil && strings.Contains(metrics, `http_server_route_exceptions_total{`) && !strings.Contains(metrics, "alice@example.com"),
			fmt.Sprint(err, strings.Contains(metrics, "alice@example.com"))
	})

	drive("1.1.0", "declined,timeout,fraud", 9, 0)
	got, _ = groups(35 + 9)
	for key, g := range got {
		wantNew := key == "/checkout *main.FraudSuspectedError"
		if g.New != wantNew {
			t.Errorf("%s: new %v, want %v (first seen in %s)", key, g.New, wantNew, g.FirstVersion)
		}
	}
	if g := got["/checkout *main.FraudSuspectedError"]; g.Count != 3 || g.FirstVersion != "1.1.0" {
		t.Errorf("the new kind: %+v, want 3 in 1.1.0", g)
	}
}
