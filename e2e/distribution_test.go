package e2e

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// dummyEnv is what the shipped configurations need from the environment, with values that reach nothing.
var dummyEnv = []string{
	"DD_API_KEY=dummy-key-for-validation", "DD_HOSTNAME=validation-host", "NEW_RELIC_LICENSE_KEY=dummy-license-key",
	"OTLP_TLS_CERT_FILE=/nonexistent/cert.pem", "OTLP_TLS_KEY_FILE=/nonexistent/key.pem",
	"OTLP_BEARER_TOKEN=dummy-token", "OTELCOL_APM_QUEUE_DIR=/nonexistent/queue", "AWS_EC2_METADATA_DISABLED=true",
	`GATEWAY_RESOLVER={static: {hostnames: ["127.0.0.1:4317", "127.0.0.1:5317"]}}`, "GATEWAY_CA_FILE=/nonexistent/ca.pem",
	"GATEWAY_BEARER_TOKEN=dummy-token", `DASHBOARD_PEERS=["127.0.0.1:8891", "127.0.0.1:8892"]`,
}

func validate(t *testing.T, env []string, configs ...string) (string, error) {
	t.Helper()
	args := []string{"validate"}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	cmd := exec.Command(harness.Binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestWithoutRouteLatencyValidates: what make capacity compares the shipped configurations with (the same files
// merged, the component taken out) is a configuration the collector takes, with nothing of the component left and
// every other part in place.
func TestWithoutRouteLatencyValidates(t *testing.T) {
	for _, overlay := range []string{"environments/production.yaml", "environments/gateway.yaml"} {
		t.Run(overlay, func(t *testing.T) {
			stock := harness.WithoutRouteLatency(t, harness.ConfigPath("config.yaml"), harness.ConfigPath(overlay))
			if out, err := validate(t, dummyEnv, stock); err != nil {
				t.Fatalf("validate %s: %v\n%s", stock, err, out)
			}
			body, err := os.ReadFile(stock)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(body), "routelatency") {
				t.Errorf("%s still names routelatency:\n%s", overlay, body)
			}
			for _, kept := range []string{"memory_limiter", "bearertokenauth/otlp", "checked_file_storage/queue", "tail_sampling/datadog", "batch/sampled"} {
				if !strings.Contains(string(body), kept) {
					t.Errorf("%s lost %s", overlay, kept)
				}
			}
		})
	}
}

func TestShippedConfigsValidate(t *testing.T) {
	base := harness.ConfigPath("config.yaml")
	cases := map[string][]string{"default": {base}}
	for _, env := range []string{"development", "staging", "production", "gateway", "newrelic"} {
		cases[env] = []string{base, harness.ConfigPath("environments/" + env + ".yaml")}
	}
	cases["gateway-newrelic"] = []string{base, harness.ConfigPath("environments/gateway.yaml"), harness.ConfigPath("environments/gateway-newrelic.yaml")}
	// The objectives overlay on the default and on the hardened gateway.
	cases["slos"] = []string{base, harness.ConfigPath("environments/slos.yaml")}
	cases["gateway-slos"] = []string{base, harness.ConfigPath("environments/gateway.yaml"), harness.ConfigPath("environments/slos.yaml")}
	// The load balancer runs on its own; with a DNS resolver as in deploy/kubernetes too.
	cases["loadbalancer"] = []string{harness.ConfigPath("environments/loadbalancer.yaml")}
	cases["loadbalancer-dns"] = cases["loadbalancer"]
	for name, configs := range cases {
		t.Run(name, func(t *testing.T) {
			env := dummyEnv
			if name == "loadbalancer-dns" {
				env = append(slices.Clone(dummyEnv), `GATEWAY_RESOLVER={dns: {hostname: otelcol-apm-gateway-headless, port: "4317"}}`)
			}
			if out, err := validate(t, env, configs...); err != nil {
				t.Fatalf("validate %v: %v\n%s", configs, err, out)
			}
		})
	}
}

func TestShippedConfigsRejectMisspelledComponent(t *testing.T) {
	cfg, err := os.ReadFile(harness.ConfigPath("config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(cfg), "processors: [memory_limiter, routelatency, batch]", "processors: [memory_limiter, routelatncy, batch]", 1)
	broken = strings.Replace(broken, "  routelatency:\n    slow:", "  routelatncy:\n    slow:", 1)
	if broken == string(cfg) {
		t.Fatal("config.yaml changed shape: the misspelling was not applied")
	}
	path := filepath.Join(t.TempDir(), "misspelled.yaml")
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := validate(t, nil, path)
	if err == nil {
		t.Fatalf("validate accepted a misspelled processor:\n%s", out)
	}
	if !strings.Contains(out, "routelatncy") || !strings.Contains(out, "unknown type") {
		t.Fatalf("the error does not name the misspelled component:\n%s", out)
	}
}

func TestShippedConfigsRejectMissingAPIKey(t *testing.T) {
	cmdEnv := []string{"DD_API_KEY=", "DD_HOSTNAME=validation-host"}
	out, err := validate(t, cmdEnv, harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/production.yaml"))
	if err == nil {
		t.Fatalf("validate accepted production without DD_API_KEY:\n%s", out)
	}
	if !strings.Contains(strings.ToLower(out), "api") || !strings.Contains(strings.ToLower(out), "key") {
		t.Fatalf("the error does not say the API key is missing:\n%s", out)
	}
}

func TestShippedConfigsRejectMissingLicenseKey(t *testing.T) {
	out, err := validate(t, []string{"NEW_RELIC_LICENSE_KEY=", "NEW_RELIC_LICENSE_KEY_FILE=", "OTLP_TLS_CERT_FILE=/nonexistent/cert.pem",
		"OTLP_TLS_KEY_FILE=/nonexistent/key.pem", "OTLP_BEARER_TOKEN=dummy-token"},
		harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/newrelic.yaml"))
	if err == nil {
		t.Fatalf("validate accepted the New Relic overlay without NEW_RELIC_LICENSE_KEY:\n%s", out)
	}
	if !strings.Contains(out, "NEW_RELIC_LICENSE_KEY: no bearer token provided") {
		t.Fatalf("the error does not name NEW_RELIC_LICENSE_KEY:\n%s", out)
	}
}

func TestComponentsListsEveryComponent(t *testing.T) {
	out, err := exec.Command(harness.Binary(t), "components").CombinedOutput()
	if err != nil {
		t.Fatalf("components: %v\n%s", err, out)
	}
	for _, name := range []string{
		"otlp", "zipkin",
		"memory_limiter", "batch", "resource", "transform", "filter", "tail_sampling", "routelatency",
		"otlp_grpc", "otlp_http", "debug", "datadog", "file", "prometheus", "loadbalancing",
		"routing", "span_metrics",
		"health_check", "pprof", "file_storage", "checked_file_storage", "bearertokenauth", "soft_memory_limit",
	} {
		if !bytes.Contains(out, []byte("name: "+name+"\n")) {
			t.Errorf("components does not list %q", name)
		}
	}
	if t.Failed() {
		t.Logf("components output:\n%s", out)
	}
}

func TestDefaultConfigRunsHealthyAndKeepsSpans(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")})
	td, ids := harness.Traces(
		harness.Request{Service: "shop", Method: "GET", Path: "/items/8812", Status: 200, Duration: 12 * time.Millisecond},
		harness.Request{Service: "shop", Method: "GET", Path: "/items/17", Status: 500, Duration: 40 * time.Millisecond},
	)
	col.Send(t, td)

	spanFile := filepath.Join(col.DataDir, "spans.jsonl")
	harness.Eventually(t, 15*time.Second, "both spans in "+spanFile, func() (bool, string) {
		b, err := os.ReadFile(spanFile)
		if err != nil {
			return false, err.Error()
		}
		for _, id := range ids {
			if !bytes.Contains(b, []byte(hex.EncodeToString(id[:]))) {
				return false, "trace " + hex.EncodeToString(id[:]) + " not in the file yet"
			}
		}
		// The processor ran before the file exporter: raw paths became routes.
		return bytes.Contains(b, []byte(`"/items/{id}"`)), "http.route /items/{id} not written"
	})

	// The connector's route metrics reach the local Prometheus endpoint.
	harness.Eventually(t, 15*time.Second, "route metrics on the Prometheus endpoint", func() (bool, string) {
		body, err := harness.Get("http://" + col.RouteMetrics + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		for _, want := range []string{
			`http_server_route_requests_total{`,
			`http_route="/items/{id}"`,
			`http_server_route_errors_total{`,
			`http_server_route_duration_quantiles_seconds{`,
		} {
			if !strings.Contains(body, want) {
				return false, want + " missing in:\n" + body
			}
		}
		return true, ""
	})
}

// TestShippedConfigsRejectAFractionTarget: an objective written 0.999 where 99.9 is meant stops the collector at
// validation with the key's path.
func TestShippedConfigsRejectAFractionTarget(t *testing.T) {
	overlay := filepath.Join(t.TempDir(), "slos.yaml")
	if err := os.WriteFile(overlay, []byte("connectors:\n  routelatency:\n    slos:\n      - {name: checkout, indicator: availability, target: 0.999}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := validate(t, dummyEnv, harness.ConfigPath("config.yaml"), overlay)
	if err == nil {
		t.Fatalf("validate accepted a target of 0.999:\n%s", out)
	}
	if !strings.Contains(out, "slos[0].target: 0.999 reads as a fraction") {
		t.Fatalf("the error does not name the objective's target:\n%s", out)
	}
}
