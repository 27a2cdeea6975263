package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
	"github.com/otelcol-apm/otelcol-apm/e2e/otlpintake"
)

const testLicenseKey = "e2e-new-relic-license-key-0123456789NRAL"

// newRelicConfigs is config.yaml with the New Relic overlay, as a team on New Relic runs it.
func newRelicConfigs() []string {
	return []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/newrelic.yaml")}
}

// TestNewRelicGetsSampledSpansAndExactRouteDeltas: config.yaml + newrelic.yaml against an OTLP intake shaped like
// New Relic's. The example service's mix, plus 2,000 generated requests for the sampling share and one span over
// every New Relic limit: every request reaches New Relic with the api-key header; its spans are named by route; every
// error and slow request ships and about the configured share of the rest; route counts arrive as deltas that add
// up to what was sent; nothing over New Relic's limits arrives, and what was cut is counted.
func TestNewRelicGetsSampledSpansAndExactRouteDeltas(t *testing.T) {
	intake, err := otlpintake.Start(testLicenseKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := harness.StartSecureCollector(t, newRelicConfigs(), "NEW_RELIC_LICENSE_KEY="+testLicenseKey,
		"NEW_RELIC_OTLP_ENDPOINT="+intake.URL, "NEW_RELIC_SAMPLING_PERCENTAGE=10", "SAMPLING_DECISION_WAIT=2s")

	shop := harness.StartShopAPI(t, "shop-nr", "production", col)
	want := shop.Drive(t, harness.StandardMix)
	shop.Stop()

	// The sampling share: 2,000 fast requests of their own traces; 40 failing, 20 slow (over the 500 ms threshold).
	var reqs []harness.Request
	for i := range 2000 {
		r := harness.Request{Service: "catalog-nr", Environment: "production", Method: "GET", Path: fmt.Sprintf("/products/%d", i), Route: "/products/{product_id}", Status: 200, Duration: 4 * time.Millisecond}
		switch {
		case i%50 == 0:
			r.Method, r.Path, r.Route, r.Status = "POST", "/cart", "/cart", 503
		case i%100 == 1:
			r.Path, r.Route, r.Duration = "/products/export", "/products/export", 900*time.Millisecond
		}
		reqs = append(reqs, r)
	}
	sendInBatches(t, col, reqs)
	sentCatalog := map[string]int{"GET /products/{product_id}": 1940, "POST /cart": 40, "GET /products/export": 20}

	// One span over every limit: 300 attributes, a 10 KiB value, a 300-byte name, a 100-entry array.
	over, _ := harness.Traces(harness.Request{Service: "limits-nr", Environment: "production", Method: "GET", Path: "/big/1", Route: "/big/{id}", Status: 500, Duration: time.Millisecond})
	attrs := over.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	attrs.PutStr("app.blob", strings.Repeat("x", 10240))
	attrs.PutStr("app."+strings.Repeat("k", 300), "a name too long")
	list := attrs.PutEmptySlice("app.list")
	for i := range 100 {
		list.AppendEmpty().SetInt(int64(i))
	}
	for i := range 300 {
		attrs.PutStr(fmt.Sprintf("app.attr.%03d", i), "v")
	}
	col.Send(t, over)

	// Spans: every error and every slow request of both services, named by route.
	var byName map[string]int
	harness.Eventually(t, 60*time.Second, "the errors and slow requests at the intake", func() (bool, string) {
		byName = map[string]int{}
		for _, s := range intake.Spans() {
			byName[s.Service+" "+s.Name]++
		}
		ok := byName["shop-nr POST /checkout"] == want["POST /checkout"] && byName["shop-nr GET /reports/slow"] == want["GET /reports/slow"] &&
			byName["catalog-nr POST /cart"] == 40 && byName["catalog-nr GET /products/export"] == 20 && byName["limits-nr GET /big/{id}"] == 1
		return ok, fmt.Sprint(byName)
	})
	for name := range byName {
		_, spanName, _ := strings.Cut(name, " ")
		_, route, _ := strings.Cut(spanName, " ")
		if strings.ContainsAny(strings.Trim(route, "/"), "0123456789") && route != "/reports/slow" {
			t.Errorf("span %q is named after a raw path, not its route", name)
		}
	}
	// 1,940 fast requests at 10 %: 194 expected, three standard deviations (±40) allowed.
	if n := byName["catalog-nr GET /products/{product_id}"]; n < 154 || n > 234 {
		t.Errorf("shipped %d of 1,940 fast requests, want about 10 %% (154..234)", n)
	}
	if n := byName["shop-nr GET /items/{item_id}"]; n > want["GET /items/{item_id}"] {
		t.Errorf("shipped %d item requests of %d sent", n, want["GET /items/{item_id}"])
	}

	// Route metrics: deltas only, whose sums are what was sent, route by route.
	sentAll := map[string]int{}
	for name, n := range want {
		sentAll["shop-nr "+name] = n
	}
	for name, n := range sentCatalog {
		sentAll["catalog-nr "+name] = n
	}
	harness.Eventually(t, 60*time.Second, "route deltas adding up to what was sent", func() (bool, string) {
		requests, errs, histograms := map[string]float64{}, map[string]float64{}, map[string]float64{}
		for _, p := range intake.Points() {
			key := fmt.Sprint(p.Attributes["service.name"], " ", p.Attributes["http.request.method"], " ", p.Attributes["http.route"])
			switch p.Metric {
			case "http.server.route.requests":
				requests[key] += p.Value
			case "http.server.route.errors":
				errs[key] += p.Value
			case "http.server.route.duration":
				histograms[key] += p.Value
			}
		}
		ok := errs["shop-nr POST /checkout"] == float64(want["POST /checkout"]) && errs["catalog-nr POST /cart"] == 40
		for key, n := range sentAll {
			ok = ok && requests[key] == float64(n) && histograms[key] == float64(n)
		}
		return ok, fmt.Sprintf("requests %v, errors %v, histogram counts %v", requests, errs, histograms)
	})
	for _, p := range intake.Points() {
		if strings.HasPrefix(p.Metric, "http.server.route.") && p.Temporality != pmetric.AggregationTemporalityDelta {
			t.Errorf("%s arrived with %s temporality, want delta", p.Metric, p.Temporality)
			break
		}
		if _, ok := p.Attributes["collector.instance.id"]; ok {
			t.Errorf("%s carries collector.instance.id: replicas' deltas would not add up", p.Metric)
			break
		}
	}

	// Only the configured key; nothing over New Relic's limits; what was cut is counted by the gateway.
	if keys := intake.APIKeys(); len(keys) != 1 || keys[testLicenseKey] == 0 {
		t.Errorf("api-key headers %v, want only the license key", keys)
	}
	if l := intake.Largest(); l.ValueBytes > 4095 || l.KeyBytes > 255 || l.ArrayEntries > 64 || l.StoredAttributes > 255 || l.PayloadBytes > otlpintake.MaxPayloadBytes {
		t.Errorf("over New Relic's limits: %+v", l)
	}
	if refused := intake.Refused(); len(refused) > 0 {
		t.Errorf("the intake refused requests: %v", refused)
	}
	if errs := intake.DecodeErrors(); len(errs) > 0 {
		t.Errorf("requests that did not decode: %v", errs)
	}
	body, err := harness.Get("http://127.0.0.1:" + col.Telemetry + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	limited := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "otelcol_processor_routelatency_limited_attributes") {
			continue
		}
		v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		for _, action := range []string{"dropped", "truncated"} {
			if strings.Contains(line, `action="`+action+`"`) {
				limited[action] += v
			}
		}
	}
	// The probe: 4 HTTP attributes and 303 of its own. The long name is dropped, then 120 are kept (the 4 HTTP ones
	// first, then the others in order): 187 dropped; the 10 KiB value and the 100-entry array, kept, are cut.
	t.Logf("FIGURES New Relic: shipped spans by service and name %v; largest at the intake %+v; limited attributes %v", byName, intake.Largest(), limited)
	if limited["dropped"] != 187 || limited["truncated"] != 2 {
		t.Errorf("limited attributes counted %v, want 187 dropped and 2 truncated", limited)
	}
}

// TestGatewayRoutesOneEnvironmentToNewRelic: gateway.yaml + gateway-newrelic.yaml with NEW_RELIC_ENVIRONMENT set.
// Spans of that environment reach New Relic only, with their route deltas; production's still go to Datadog.
func TestGatewayRoutesOneEnvironmentToNewRelic(t *testing.T) {
	nr, err := otlpintake.Start(testLicenseKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nr.Close() })
	dd, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dd.Close() })
	col := harness.StartSecureCollector(t, configs("environments/gateway.yaml", "environments/gateway-newrelic.yaml"),
		"JAEGER_OTLP_ENDPOINT="+harness.Addr(t), "DD_API_KEY="+testAPIKey, "DD_INTAKE_URL="+dd.URL,
		"NEW_RELIC_LICENSE_KEY="+testLicenseKey, "NEW_RELIC_OTLP_ENDPOINT="+nr.URL, "NEW_RELIC_ENVIRONMENT=production-eu",
		"NEW_RELIC_SAMPLING_PERCENTAGE=100", "DATADOG_SAMPLING_PERCENTAGE=100", "SAMPLING_DECISION_WAIT=1s")
	var reqs []harness.Request
	for i := range 30 {
		reqs = append(reqs, harness.Request{Service: "shop-eu", Environment: "production-eu", Method: "GET", Path: fmt.Sprintf("/items/%d", i), Route: "/items/{item_id}", Status: 200, Duration: time.Millisecond},
			harness.Request{Service: "shop-us", Environment: "production", Method: "GET", Path: fmt.Sprintf("/items/%d", i), Route: "/items/{item_id}", Status: 200, Duration: time.Millisecond})
	}
	sendInBatches(t, col, reqs)

	harness.Eventually(t, 30*time.Second, "30 spans at each backend", func() (bool, string) {
		eu, us := 0, 0
		for _, s := range nr.Spans() {
			if s.Service == "shop-eu" {
				eu++
			}
		}
		for _, s := range dd.Spans() {
			if s.Service == "shop-us" {
				us++
			}
		}
		return eu == 30 && us == 30, fmt.Sprintf("New Relic %d of shop-eu, Datadog %d of shop-us", eu, us)
	})
	harness.Eventually(t, 30*time.Second, "shop-eu's route deltas at New Relic", func() (bool, string) {
		n := 0.0
		for _, p := range nr.Points() {
			if p.Metric == "http.server.route.requests" && p.Attributes["service.name"] == "shop-eu" {
				n += p.Value
			}
		}
		return n == 30, fmt.Sprint(n)
	})
	for _, s := range nr.Spans() {
		if s.Service != "shop-eu" {
			t.Errorf("New Relic got a span of %s (%s)", s.Service, s.Environment)
		}
	}
	for _, s := range dd.Spans() {
		if s.Service == "shop-eu" {
			t.Error("Datadog got a span of the New Relic environment")
			break
		}
	}
}
