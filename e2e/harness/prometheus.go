package harness

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Prometheus is a real Prometheus server (Debian's package, 2.42) scraping targets every second.
type Prometheus struct {
	*Process
	Addr string
}

// PrometheusBinary is PROMETHEUS_BIN, or prometheus on the PATH (`make e2e` installs Debian's package when missing).
func PrometheusBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("PROMETHEUS_BIN"); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("no prometheus on the PATH: run the suites through make (make e2e installs Debian's prometheus package)")
	}
	return bin
}

// StartPrometheus scrapes each target's /metrics every second; nativeHistograms turns on the feature flag with which
// Prometheus negotiates the protobuf format and keeps exponential histograms as native histograms.
func StartPrometheus(t testing.TB, nativeHistograms bool, targets ...string) *Prometheus {
	t.Helper()
	return StartPrometheusWith(t, PrometheusOptions{NativeHistograms: nativeHistograms}, targets...)
}

// PrometheusOptions add to the scrape configuration.
type PrometheusOptions struct {
	NativeHistograms bool
	// RuleFiles are evaluated every second; Alertmanager (host:port) receives their alerts.
	RuleFiles    []string
	Alertmanager string
}

// StartPrometheusWith is StartPrometheus with rule files and an Alertmanager.
func StartPrometheusWith(t testing.TB, opts PrometheusOptions, targets ...string) *Prometheus {
	t.Helper()
	nativeHistograms := opts.NativeHistograms
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, target := range targets {
		quoted[i] = strconv.Quote(target)
	}
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: otelcol-apm\n    static_configs:\n      - targets: [%s]\n", strings.Join(quoted, ", "))
	if len(opts.RuleFiles) > 0 {
		files := make([]string, len(opts.RuleFiles))
		for i, f := range opts.RuleFiles {
			files[i] = strconv.Quote(f)
		}
		config += fmt.Sprintf("rule_files: [%s]\n", strings.Join(files, ", "))
	}
	if opts.Alertmanager != "" {
		config += fmt.Sprintf("alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [%q]\n", opts.Alertmanager)
	}
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Prometheus{Addr: Addr(t)}
	args := []string{"--config.file=" + configFile, "--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + p.Addr}
	if nativeHistograms {
		args = append(args, "--enable-feature=native-histograms")
	}
	p.Process = Start(t, "prometheus", PrometheusBinary(t), args)
	WaitHTTP(t, p.Process, "http://"+p.Addr+"/-/ready", 30*time.Second)
	return p
}

// Sample is one element of an instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query.
func (p *Prometheus) Query(promql string) ([]Sample, error) {
	body, err := Get("http://" + p.Addr + "/api/v1/query?query=" + url.QueryEscape(promql))
	if err != nil {
		return nil, err
	}
	var resp struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return nil, fmt.Errorf("query %q: %w: %s", promql, err, body)
	}
	if resp.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", promql, resp.Error)
	}
	out := make([]Sample, 0, len(resp.Data.Result))
	for _, r := range resp.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", promql, s, err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// TargetErrors returns the last scrape error of every target that has one ("" when all scrapes succeed).
func (p *Prometheus) TargetErrors() (string, error) {
	body, err := Get("http://" + p.Addr + "/api/v1/targets")
	if err != nil {
		return "", err
	}
	var resp struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		return "", err
	}
	var errs []string
	for _, target := range resp.Data.ActiveTargets {
		if target.Health != "up" || target.LastError != "" {
			errs = append(errs, fmt.Sprintf("%s: %s %s", target.ScrapeURL, target.Health, target.LastError))
		}
	}
	return strings.Join(errs, "; "), nil
}
