package faults

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestFault6Secrets: the Datadog API key and the bearer token appear in no log line (at the shipped level, info,
// with export failures and rejected requests logged), in no printed configuration, and in nothing the gateway
// serves on its ports. FAULTS_LOG_LEVEL=debug runs it at debug level, where it fails: see docs/reliability.md.
func TestFault6Secrets(t *testing.T) {
	const apiKey = "ddkey-0123456789abcdef0123456789abcdef"
	logLevel := os.Getenv("FAULTS_LOG_LEVEL")
	if logLevel == "" {
		logLevel = "info"
	}
	sink := startSeqSink(t, 0)
	configs := []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/gateway.yaml"),
		harness.ConfigPath("e2e/testdata/datadog-intake.yaml"), "testdata/log-level.yaml"}
	creds := harness.NewCredentials(t)
	env := append([]string{"JAEGER_OTLP_ENDPOINT=" + sink.Addr, "DD_API_KEY=" + apiKey,
		"DD_INTAKE_URL=http://" + harness.Addr(t), "FAULTS_LOG_LEVEL=" + logLevel}, creds.CollectorEnv()...)
	col := harness.NewCollector(t, configs, creds, env...)
	col.Start(t)
	secrets := map[string]string{"Datadog API key": apiKey, "bearer token": col.Creds.Token}

	// Spans for Jaeger and for Datadog (whose intake is a closed port: failures and retries get logged), and
	// requests with a wrong token (rejections get logged).
	col.Send(t, loadTraces(1, 10))
	prod, _ := harness.Traces(harness.Request{Service: "shop-prod", Environment: "production", Method: "GET",
		Path: "/items/1", Route: "/items/{item_id}", Status: 200, Duration: time.Millisecond})
	col.Send(t, prod)
	wrong := *col.Creds
	wrong.Token = col.Creds.Token + "-wrong"
	bad := *col
	bad.Creds = &wrong
	if err := bad.Export(loadTraces(100, 10)); err == nil {
		t.Error("a wrong token was accepted")
	}
	waitDelivered(t, sink, seqs(1, 10), 15*time.Second)
	time.Sleep(3 * time.Second) // the Datadog exporter's first failures and retries

	printed := searchSecrets(t, "6 secrets", col, configs, env, logLevel, secrets)
	if !strings.Contains(printed, "bearertokenauth/otlp") || !strings.Contains(col.Output(), "connection refused") {
		t.Errorf("the outputs searched are not the ones intended (print-config without the extension, or no export failure logged)")
	}
}

// TestFault6SecretsNewRelic is scenario 6 on the New Relic overlay: the license key and the bearer token appear in
// no log line (with export failures to a closed port logged), in no printed configuration, and in nothing the
// gateway serves.
func TestFault6SecretsNewRelic(t *testing.T) {
	const licenseKey = "nrkey-0123456789abcdef0123456789abcdefNRAL"
	configs := []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/newrelic.yaml"), "testdata/log-level.yaml"}
	creds := harness.NewCredentials(t)
	env := append([]string{"NEW_RELIC_LICENSE_KEY=" + licenseKey, "NEW_RELIC_OTLP_ENDPOINT=http://" + harness.Addr(t),
		"NEW_RELIC_SAMPLING_PERCENTAGE=100", "SAMPLING_DECISION_WAIT=1s", "FAULTS_LOG_LEVEL=info"}, creds.CollectorEnv()...)
	col := harness.NewCollector(t, configs, creds, env...)
	col.Start(t)
	prod, _ := harness.Traces(harness.Request{Service: "shop-nr", Environment: "production", Method: "GET",
		Path: "/items/1", Route: "/items/{item_id}", Status: 500, Duration: time.Millisecond})
	col.Send(t, prod)
	harness.Eventually(t, 30*time.Second, "an export failure to the closed port in the log", func() (bool, string) {
		return strings.Contains(col.Output(), "connection refused"), ""
	})
	printed := searchSecrets(t, "6 secrets (New Relic)", col, configs, env, "info",
		map[string]string{"license key": licenseKey, "bearer token": col.Creds.Token})
	if !strings.Contains(printed, "bearertokenauth/NEW_RELIC_LICENSE_KEY") {
		t.Errorf("print-config does not show the license key's authenticator: the output searched is not the one intended")
	}
}

// searchSecrets looks for each secret in the gateway's log, in print-config of its configuration, and in what its
// health and telemetry endpoints serve; it prints the scenario's figures and returns print-config's output.
func searchSecrets(t *testing.T, scenario string, col *harness.Collector, configs, env []string, logLevel string, secrets map[string]string) string {
	t.Helper()
	seen := map[string]string{"the gateway's log (" + logLevel + " level)": col.Output()}
	cmd := exec.Command(harness.Binary(t), append([]string{"print-config"}, configArgs(configs)...)...)
	cmd.Env = append(os.Environ(), env...)
	printed, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("print-config: %v\n%s", err, printed)
	}
	seen["print-config"] = string(printed)
	for _, path := range []string{"http://" + col.Health + "/", "http://127.0.0.1:" + col.Telemetry + "/metrics"} {
		body, err := harness.Get(path)
		if err != nil {
			t.Fatal(err)
		}
		seen[path] = body
	}
	lines, found := 0, 0
	for where, text := range seen {
		lines += strings.Count(text, "\n")
		for what, secret := range secrets {
			if n := strings.Count(text, secret); n > 0 {
				found += n
				t.Errorf("the %s appears %d times in %s, first in:\n%s", what, n, where, lineWith(text, secret))
			}
		}
	}
	names := make([]string, 0, len(secrets))
	for what := range secrets {
		names = append(names, what)
	}
	slices.Sort(names)
	figures(t, scenario, "searched %d lines (%s log, print-config, health, telemetry) for the %s: %d found", lines, logLevel, strings.Join(names, " and the "), found)
	return string(printed)
}

func configArgs(configs []string) []string {
	var args []string
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	return args
}

// lineWith returns the first line of text that holds secret, with the secret masked.
func lineWith(text, secret string) string {
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, secret) {
			return strings.ReplaceAll(line, secret, "<SECRET>")
		}
	}
	return ""
}
