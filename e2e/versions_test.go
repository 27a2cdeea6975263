package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestVersionsCompareADeploy: the example service as 1.0.0, then restarted as 1.1.0 with its report route three
// times slower and a route 1.0.0 never served. The versions table counts each version's requests exactly, lists
// the new route and flags the slower one; the route comparison has both versions side by side.
func TestVersionsCompareADeploy(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")}, "DASHBOARD_SLICE=3s")
	drive := func(version, slow string, withOrders bool) {
		shop := harness.StartShopAPI(t, "shop-ver", "development", col, "SLOW_DELAY="+slow,
			"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=development,service.version="+version)
		get := func(path string, n int) {
			for range n {
				resp, err := http.Get("http://" + shop.Addr + path)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %v %v", path, err, resp)
				}
				resp.Body.Close()
			}
		}
		get("/items/7", 40)
		get("/reports/slow", 32)
		if withOrders {
			get("/users/1/orders", 35)
		}
		shop.Stop()
	}
	drive("1.0.0", "100ms", false)
	drive("1.1.0", "300ms", true)

	var body struct {
		Versions []struct {
			Version   string
			Requests  int
			NewRoutes []string `json:"new_routes"`
			Changed   []struct {
				Route, What string
			}
			Routes []struct {
				Route    string
				Requests int
			}
		}
		Compare []struct {
			Version string
			Route   struct{ Requests int }
		}
	}
	harness.Eventually(t, 30*time.Second, "both versions' requests in /api/versions", func() (bool, string) {
		text, err := harness.Get("http://" + col.Dashboard + "/api/versions?service=shop-ver&environment=development&method=GET&route=/reports/slow")
		if err == nil {
			err = json.Unmarshal([]byte(text), &body)
		}
		if err != nil || len(body.Versions) != 2 {
			return false, fmt.Sprint(err, text)
		}
		// Each start's readiness probe is one more GET /items/0.
		return body.Versions[0].Requests == 41+32+35 && body.Versions[1].Requests == 41+32, fmt.Sprint(text)
	})
	latest := body.Versions[0]
	if latest.Version != "1.1.0" || body.Versions[1].Version != "1.0.0" {
		t.Fatalf("versions %v, want 1.1.0 then 1.0.0", body.Versions)
	}
	if len(latest.NewRoutes) != 1 || latest.NewRoutes[0] != "GET /users/{user_id}/orders" {
		t.Errorf("new routes of 1.1.0: %v", latest.NewRoutes)
	}
	if len(latest.Changed) != 1 || latest.Changed[0].Route != "/reports/slow" || latest.Changed[0].What != "slower" {
		t.Errorf("changed routes of 1.1.0: %+v, want /reports/slow slower only", latest.Changed)
	}
	if len(body.Compare) != 2 || body.Compare[0].Route.Requests != 32 || body.Compare[1].Route.Requests != 32 {
		t.Errorf("comparison of /reports/slow: %+v", body.Compare)
	}
}
