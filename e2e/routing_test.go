package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

const testAPIKey = "e2e-test-api-key-0123456789abcdef"

// backends is what every routing scenario runs: a real Jaeger and the Datadog intake, both on loopback.
type backends struct {
	jaeger *harness.Jaeger
	intake *ddintake.Intake
}

func startBackends(t *testing.T) *backends {
	t.Helper()
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(intake.Summary())
		}
		_ = intake.Close()
	})
	return &backends{jaeger: harness.StartJaeger(t), intake: intake}
}

// collectorEnv points every exporter of the shipped configs at this run's backends.
func (b *backends) collectorEnv() []string {
	return []string{
		"JAEGER_OTLP_ENDPOINT=" + b.jaeger.OTLP,
		"DD_API_KEY=" + testAPIKey,
		"DD_INTAKE_URL=" + b.intake.URL,
		"SLOW_REQUEST_THRESHOLD=500ms",
		// Every trace to the intake, decided 2 s after its root (the sampling test checks the shipped 10 %).
		"DATADOG_SAMPLING_PERCENTAGE=100", "SAMPLING_DECISION_WAIT=2s",
	}
}

func configs(overlays ...string) []string {
	out := []string{harness.ConfigPath("config.yaml")}
	for _, o := range overlays {
		out = append(out, harness.ConfigPath(o))
	}
	return append(out, harness.ConfigPath("e2e/testdata/datadog-intake.yaml"))
}

// jaegerServerSpans waits until Jaeger holds want server spans of service and returns them by name.
func (b *backends) jaegerServerSpans(t *testing.T, service string, want int) map[string][]harness.JaegerSpan {
	t.Helper()
	var byName map[string][]harness.JaegerSpan
	harness.Eventually(t, 30*time.Second, fmt.Sprintf("%d spans of %s in Jaeger", want, service), func() (bool, string) {
		spans, err := b.jaeger.Spans(service)
		if err != nil {
			return false, err.Error()
		}
		byName = map[string][]harness.JaegerSpan{}
		for _, s := range spans {
			byName[s.OperationName] = append(byName[s.OperationName], s)
		}
		return len(spans) == want, fmt.Sprintf("Jaeger has %d spans of %s: %v; the Datadog intake has %d of them",
			len(spans), service, counts(byName), b.intakeCount(service))
	})
	return byName
}

// intakeSpans waits until the intake holds want spans of service and returns them by resource.
func (b *backends) intakeSpans(t *testing.T, service string, want int) map[string][]ddintake.Span {
	t.Helper()
	var byResource map[string][]ddintake.Span
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("%d spans of %s at the Datadog intake", want, service), func() (bool, string) {
		byResource = map[string][]ddintake.Span{}
		n := 0
		for _, s := range b.intake.Spans() {
			if s.Service == service {
				byResource[s.Resource] = append(byResource[s.Resource], s)
				n++
			}
		}
		jaegerSpans, _ := b.jaeger.Spans(service)
		return n == want, fmt.Sprintf("the Datadog intake has %d spans of %s: %v; Jaeger has %d of them; %s",
			n, service, counts(byResource), len(jaegerSpans), b.intake.Summary())
	})
	return byResource
}

// assertAPMStats waits for the APM stats of service to count, per resource, the hits and errors the spans say, and
// checks each resource's latency summary against the exact quantiles of those spans' durations: within 1.2 %, the
// stats sketch's 1 % plus the Datadog stats code's rounding of each duration down to 10 significant bits (up to
// 0.2 %, nsTimestampToFloat in datadog-agent's pkg/trace/stats).
func (b *backends) assertAPMStats(t *testing.T, service, env string, spans map[string][]ddintake.Span) {
	t.Helper()
	want, wantErrors := map[string]uint64{}, map[string]uint64{}
	for resource, list := range spans {
		want[resource] = uint64(len(list))
		for _, s := range list {
			if s.Error != 0 {
				wantErrors[resource]++
			}
		}
	}
	var sketches map[string]*ddsketch.DDSketch
	harness.Eventually(t, 60*time.Second, "APM stats of "+service+" at the Datadog intake", func() (bool, string) {
		hits, errs := map[string]uint64{}, map[string]uint64{}
		sketches = map[string]*ddsketch.DDSketch{}
		for _, g := range b.intake.StatsGroups() {
			if g.Service != service || g.SpanKind != "server" {
				continue
			}
			if g.Env != env {
				t.Errorf("stats of %s have env %q, want %q", g.Resource, g.Env, env)
			}
			hits[g.Resource] += g.Hits
			errs[g.Resource] += g.Errors
			for _, sk := range []*ddsketch.DDSketch{g.OkSummary, g.ErrorSummary} {
				if sk == nil {
					continue
				}
				if sketches[g.Resource] == nil {
					sketches[g.Resource] = sk.Copy()
				} else if err := sketches[g.Resource].MergeWith(sk); err != nil {
					return false, err.Error()
				}
			}
		}
		ok := len(hits) == len(want)
		for r, n := range want {
			ok = ok && hits[r] == n && errs[r] == wantErrors[r]
		}
		return ok, fmt.Sprintf("hits %v errors %v, want hits %v errors %v; %s", hits, errs, want, wantErrors, b.intake.Summary())
	})
	worst := 0.0
	for resource, list := range spans {
		durations := make([]float64, len(list))
		for i, s := range list {
			durations[i] = float64(s.Duration)
		}
		sort.Float64s(durations)
		for _, q := range []float64{0.5, 0.95, 0.99} {
			exact := durations[int(math.Floor(q*float64(len(durations)-1)))]
			got, err := sketches[resource].GetValueAtQuantile(q)
			if err != nil {
				t.Fatal(err)
			}
			relErr := math.Abs(got-exact) / exact
			worst = max(worst, relErr)
			if relErr > 0.012 {
				t.Errorf("APM stats of %s: p%g %.0f ns, exact %.0f ns (%.2f%% > 1.2%%)", resource, q*100, got, exact, relErr*100)
			}
		}
	}
	t.Logf("APM stats of %s in %s: hits %v, errors %v, latency summaries within %.2f%% of the exact p50/p95/p99", service, env, want, wantErrors, worst*100)
}

func counts[T any](m map[string][]T) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

func assertCounts[T any](t *testing.T, backend string, want map[string]int, got map[string][]T) {
	t.Helper()
	if fmt.Sprint(want) != fmt.Sprint(counts(got)) {
		t.Errorf("%s: spans per route name: want %v, got %v", backend, want, counts(got))
	}
}

// assertNoService fails when a backend that must not see the service has it.
func (b *backends) assertJaegerHasNo(t *testing.T, service string) {
	t.Helper()
	services, err := b.jaeger.Services()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range services {
		if s == service {
			spans, _ := b.jaeger.Spans(service)
			t.Errorf("Jaeger got %d spans of %s, which must not reach it", len(spans), service)
		}
	}
}

func (b *backends) intakeCount(service string) int {
	n := 0
	for _, s := range b.intake.Spans() {
		if s.Service == service {
			n++
		}
	}
	return n
}

func (b *backends) assertIntakeHasNoSpansOf(t *testing.T, service string) {
	t.Helper()
	if n := b.intakeCount(service); n > 0 {
		t.Errorf("the Datadog intake got %d spans of %s, which must not reach it", n, service)
	}
}

// TestDevelopmentSendsSpansToJaegerOnly: config.yaml + development.yaml.
func TestDevelopmentSendsSpansToJaegerOnly(t *testing.T) {
	b := startBackends(t)
	col := harness.StartCollector(t, configs("environments/development.yaml"), append(b.collectorEnv(), "JAEGER_UI_URL=http://"+b.jaeger.Query)...)
	shop := harness.StartShopAPI(t, "shop-dev", "development", col)
	want := shop.Drive(t, harness.StandardMix)
	shop.Stop() // flushes the SDK's batch

	got := b.jaegerServerSpans(t, "shop-dev", harness.StandardMix.Total()+1)
	assertCounts(t, "Jaeger", want, got)
	for name, spans := range got {
		for _, s := range spans {
			route := s.Tag("http.route")
			switch {
			case name == "GET {unmatched}":
				// No route matched: the stored span carries none, and the gateway's mark says it looked.
				if route != "" || s.Tag("http.route.unmatched") != "true" {
					t.Errorf("Jaeger span %q has http.route %q and http.route.unmatched %q, want none and true", name, route, s.Tag("http.route.unmatched"))
				}
			case route == "" || !strings.HasSuffix(name, route):
				t.Errorf("Jaeger span %q has http.route %q", name, route)
			}
			slow := s.Tag("http.route.slow") == "true"
			if name == "GET /reports/slow" && !slow {
				t.Errorf("slow request %s (%d us) is not tagged slow", name, s.Duration)
			}
			if slow && s.Duration < 500_000 {
				t.Errorf("request %s of %d us is tagged slow under a 500ms threshold", name, s.Duration)
			}
		}
	}
	// Route metrics of development stay on the local Prometheus endpoint.
	harness.Eventually(t, 15*time.Second, "route metrics on Prometheus", func() (bool, string) {
		body, err := harness.Get("http://" + col.RouteMetrics + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		labels := []string{`deployment_environment_name="development"`, `http_request_method="POST"`, `http_response_status_code="500"`, `http_route="/checkout"`, `service_name="shop-dev"`}
		for _, l := range strings.Split(body, "\n") {
			if strings.HasPrefix(l, "http_server_route_requests_total{") && strings.HasSuffix(l, "} 5") && containsAll(l, labels) {
				return true, ""
			}
		}
		return false, "no POST /checkout 500 count of 5 in:\n" + grepLines(body, "http_server_route_requests_total")
	})
	assertSlowestAreTracesInJaeger(t, col, b.jaeger, "shop-dev", "GET", "/reports/slow")
	time.Sleep(2 * time.Second) // a misrouted batch would have reached the intake by now
	b.assertIntakeHasNoSpansOf(t, "shop-dev")
	if pts := b.intake.Points(); len(pts) > 0 {
		t.Errorf("the Datadog intake got %d metric points in development", len(pts))
	}
}

// TestProductionSendsSpansAndRouteMetricsToDatadogOnly: config.yaml + production.yaml.
func TestProductionSendsSpansAndRouteMetricsToDatadogOnly(t *testing.T) {
	b := startBackends(t)
	col := harness.StartSecureCollector(t, configs("environments/production.yaml", "environments/slos.yaml"), b.collectorEnv()...)
	shop := harness.StartShopAPI(t, "shop-prod", "production", col)
	want := shop.Drive(t, harness.StandardMix)
	shop.Stop()

	got := b.intakeSpans(t, "shop-prod", harness.StandardMix.Total()+1)
	assertCounts(t, "Datadog intake (resource names)", want, got)
	if keys := b.intake.APIKeys(); keys[testAPIKey] == 0 || len(keys) != 1 {
		t.Errorf("DD-API-KEY headers: %v, want only the configured key", keys)
	}
	for resource, spans := range got {
		if strings.ContainsAny(strings.TrimPrefix(resource, "GET /reports/slow"), "0123456789") {
			t.Errorf("resource %q carries a raw id", resource)
		}
		for _, s := range spans {
			if s.Env != "production" {
				t.Errorf("span of %s has env %q", resource, s.Env)
			}
		}
	}

	// Route metrics: per-route request and error counts equal to what was sent, latency as sketches.
	harness.Eventually(t, 60*time.Second, "route metrics at the intake", func() (bool, string) {
		requests, errs, sketched := map[string]float64{}, map[string]float64{}, 0.0
		for _, p := range b.intake.Points() {
			key := p.Tag("http.request.method") + " " + p.Tag("http.route")
			switch {
			case p.Metric == "http.server.route.requests" && !p.Sketch:
				requests[key] += p.Value
			case p.Metric == "http.server.route.errors" && !p.Sketch:
				errs[key] += p.Value
			case p.Metric == "http.server.route.duration" && p.Sketch:
				sketched += p.Value
			}
		}
		ok := sketched == float64(harness.StandardMix.Total()+1) && errs["POST /checkout"] == float64(harness.StandardMix.Checkouts)
		for name, n := range want {
			ok = ok && requests[name] == float64(n)
		}
		return ok, fmt.Sprintf("requests %v, errors %v, sketch counts %v", requests, errs, sketched)
	})
	// The objectives' counts arrive as deltas that add up to what was sent: every checkout fails, items and the
	// 600 ms reports are under their thresholds.
	m := harness.StandardMix
	wantSLO := map[string]float64{"checkout-availability bad": float64(m.Checkouts), "checkout-availability good": 0,
		"items-latency good": float64(m.Items + 1), "items-latency bad": 0, "reports-latency good": float64(m.Slow), "reports-latency bad": 0}
	harness.Eventually(t, 60*time.Second, "slo.events deltas at the intake", func() (bool, string) {
		got := map[string]float64{}
		for _, p := range b.intake.Points() {
			if p.Metric == "slo.events" && !p.Sketch {
				got[p.Tag("slo.name")+" "+p.Tag("outcome")] += p.Value
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(wantSLO), fmt.Sprintf("got %v, want %v", got, wantSLO)
	})
	b.assertAPMStats(t, "shop-prod", "production", got)
	b.assertJaegerHasNo(t, "shop-prod")
}

// TestGatewayRoutesEachEnvironmentToItsBackend: one collector with gateway.yaml, two instances of the service, and
// spans of an environment no route names.
func TestGatewayRoutesEachEnvironmentToItsBackend(t *testing.T) {
	b := startBackends(t)
	col := harness.StartSecureCollector(t, configs("environments/gateway.yaml"), b.collectorEnv()...)
	dev := harness.StartShopAPI(t, "shop-dev", "development", col)
	prod := harness.StartShopAPI(t, "shop-prod", "production", col)
	wantDev := dev.Drive(t, harness.StandardMix)
	wantProd := prod.Drive(t, harness.StandardMix)
	dev.Stop()
	prod.Stop()
	td, ids := harness.Traces(
		harness.Request{Service: "shop-qa", Environment: "qa", Method: "GET", Path: "/items/1", Status: 200, Duration: time.Millisecond},
		harness.Request{Service: "shop-none", Method: "GET", Path: "/items/2", Status: 200, Duration: time.Millisecond},
	)
	col.Send(t, td)

	assertCounts(t, "Jaeger", wantDev, b.jaegerServerSpans(t, "shop-dev", harness.StandardMix.Total()+1))
	prodSpans := b.intakeSpans(t, "shop-prod", harness.StandardMix.Total()+1)
	assertCounts(t, "Datadog intake", wantProd, prodSpans)
	b.assertAPMStats(t, "shop-prod", "production", prodSpans)
	spanFile := filepath.Join(col.DataDir, "spans.jsonl")
	harness.Eventually(t, 15*time.Second, "spans of unknown environments in the default pipeline's file", func() (bool, string) {
		data, err := os.ReadFile(spanFile)
		if err != nil {
			return false, err.Error()
		}
		for _, id := range ids {
			if !bytes.Contains(data, []byte(fmt.Sprintf("%x", id[:]))) {
				return false, fmt.Sprintf("trace %x not in %s", id[:], spanFile)
			}
		}
		return true, ""
	})
	b.assertJaegerHasNo(t, "shop-prod")
	b.assertJaegerHasNo(t, "shop-qa")
	b.assertIntakeHasNoSpansOf(t, "shop-dev")
	b.assertIntakeHasNoSpansOf(t, "shop-qa")
	if data, _ := os.ReadFile(spanFile); bytes.Contains(data, []byte("shop-dev")) || bytes.Contains(data, []byte("shop-prod")) {
		t.Errorf("spans of a routed environment reached the default pipeline's file")
	}
}

// TestJaegerOutageLosesNoAcceptedSpan: Jaeger is stopped for 20 s while spans flow, then started again; every span
// the collector acknowledged during and after the outage reaches the new Jaeger (queue + retry).
func TestJaegerOutageLosesNoAcceptedSpan(t *testing.T) {
	b := startBackends(t)
	col := harness.StartCollector(t, configs("environments/development.yaml"), b.collectorEnv()...)

	send := func(service string, batches int) int {
		sent := 0
		for range batches {
			reqs := make([]harness.Request, 10)
			for i := range reqs {
				reqs[i] = harness.Request{Service: service, Environment: "development", Method: "GET", Path: fmt.Sprintf("/items/%d", sent+i), Status: 200, Duration: time.Millisecond}
			}
			td, _ := harness.Traces(reqs...)
			if err := col.Export(td); err != nil {
				t.Fatalf("the collector refused a batch during the outage: %v", err)
			}
			sent += len(reqs)
			time.Sleep(100 * time.Millisecond)
		}
		return sent
	}
	before := send("loadgen-before", 10)
	b.jaegerServerSpans(t, "loadgen-before", before)

	b.jaeger.Stop()
	outageStart := time.Now()
	during := send("loadgen-during", 150) // ~15 s of traffic into a dead backend
	time.Sleep(time.Until(outageStart.Add(20 * time.Second)))
	b.jaeger.Restart(t)
	after := send("loadgen-after", 20)

	b.jaegerServerSpans(t, "loadgen-during", during)
	b.jaegerServerSpans(t, "loadgen-after", after)
	t.Logf("acknowledged and delivered: %d during the 20 s outage, %d after it", during, after)
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// assertSlowestAreTracesInJaeger: the route page's slowest requests link to traces that Jaeger has.
func assertSlowestAreTracesInJaeger(t *testing.T, col *harness.Collector, jaeger *harness.Jaeger, service, method, route string) {
	t.Helper()
	q := url.Values{"service": {service}, "method": {method}, "route": {route}, "window": {"15m"}}
	var body struct {
		Slowest []struct {
			TraceID   string `json:"trace_id"`
			JaegerURL string `json:"jaeger_url"`
		} `json:"slowest"`
	}
	harness.Eventually(t, 20*time.Second, "the dashboard's slowest requests of "+route, func() (bool, string) {
		raw, err := harness.Get("http://" + col.Dashboard + "/api/series?" + q.Encode())
		if err != nil {
			return false, err.Error()
		}
		if err := json.Unmarshal([]byte(raw), &body); err != nil {
			return false, err.Error()
		}
		return len(body.Slowest) > 0, raw
	})
	for _, s := range body.Slowest {
		if s.JaegerURL != "http://"+jaeger.Query+"/trace/"+s.TraceID {
			t.Errorf("slowest request link %q, want Jaeger's trace page of %s", s.JaegerURL, s.TraceID)
		}
		raw, err := harness.Get("http://" + jaeger.Query + "/api/traces/" + s.TraceID)
		if err != nil || !strings.Contains(raw, `"traceID":"`+s.TraceID+`"`) {
			t.Errorf("trace %s of the dashboard's slowest %s requests is not in Jaeger: %v %.200s", s.TraceID, route, err, raw)
		}
	}
}
