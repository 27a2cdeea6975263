// Package browser drives the route dashboard of a real otelcol-apm process in real headless Chromium.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// route is one route of the known mix: its requests' latencies and how many of them fail. Spans carry only the
// raw path; template is the route the collector must resolve it to.
type route struct {
	method, template, path string
	latencies              []time.Duration
	errors                 int
}

func knownMix() []route {
	rng := rand.New(rand.NewPCG(42, 7))
	lognormal := func(n int, median, sigma float64) []time.Duration {
		out := make([]time.Duration, n)
		for i := range out {
			out[i] = time.Duration(math.Exp(math.Log(median)+sigma*rng.NormFloat64()) * float64(time.Second))
		}
		return out
	}
	return []route{
		{"GET", "/items/{id}", "/items/%d", lognormal(1200, 0.030, 0.6), 36},
		{"POST", "/checkout", "/checkout", lognormal(300, 0.180, 0.4), 45},
		{"GET", "/reports/{id}", "/reports/%d", lognormal(60, 0.900, 0.3), 0},
	}
}

// otlpJSON encodes the mix as one OTLP/HTTP JSON request of service "shop" in "development", with raw paths only.
func otlpJSON(mix []route) []byte {
	end := time.Now()
	var spans []map[string]any
	n := 0
	for _, r := range mix {
		for i, d := range r.latencies {
			n++
			status := 200
			if i < r.errors {
				status = 500
			}
			path := r.path
			if strings.Contains(path, "%d") {
				path = fmt.Sprintf(path, 1000+i)
			}
			attrs := []map[string]any{
				{"key": "http.request.method", "value": map[string]any{"stringValue": r.method}},
				{"key": "url.path", "value": map[string]any{"stringValue": path}},
				{"key": "http.response.status_code", "value": map[string]any{"intValue": strconv.Itoa(status)}},
			}
			span := map[string]any{
				"traceId": fmt.Sprintf("%032x", n), "spanId": fmt.Sprintf("%016x", n), "name": r.method + " " + path, "kind": 2,
				"startTimeUnixNano": strconv.FormatInt(end.Add(-d).UnixNano(), 10), "endTimeUnixNano": strconv.FormatInt(end.UnixNano(), 10),
				"attributes": attrs,
			}
			if status >= 500 {
				span["status"] = map[string]any{"code": 2}
			}
			spans = append(spans, span)
		}
	}
	body, _ := json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource": map[string]any{"attributes": []any{
			map[string]any{"key": "service.name", "value": map[string]any{"stringValue": "shop"}},
			map[string]any{"key": "deployment.environment.name", "value": map[string]any{"stringValue": "development"}},
		}},
		"scopeSpans": []any{map[string]any{"spans": spans}},
	}}})
	return body
}

func exactP99Ms(latencies []time.Duration) float64 {
	s := slices.Clone(latencies)
	slices.Sort(s)
	return float64(s[int(math.Floor(0.99*float64(len(s)-1)))]) / 1e6
}

func startCollector(t *testing.T) (otlpHTTP, dashboard string) {
	bin := os.Getenv("OTELCOL_APM_BIN")
	if bin == "" {
		t.Fatal("OTELCOL_APM_BIN is not set: run through make (make browser)")
	}
	root, _ := filepath.Abs("../..")
	otlpHTTP, dashboard, health := freeAddr(t), freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--config", filepath.Join(root, "config.yaml"))
	cmd.Env = append(os.Environ(),
		"OTLP_GRPC_ENDPOINT="+freeAddr(t), "OTLP_HTTP_ENDPOINT="+otlpHTTP, "HEALTH_CHECK_ENDPOINT="+health,
		"ROUTE_METRICS_ENDPOINT="+freeAddr(t), "TELEMETRY_METRICS_PORT="+strings.Split(freeAddr(t), ":")[1],
		"OTELCOL_APM_DATA_DIR="+t.TempDir(), "ROUTE_METRICS_FLUSH_INTERVAL=1s",
		"DASHBOARD_ENDPOINT="+dashboard, "JAEGER_UI_URL=http://127.0.0.1:16686",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})
	waitFor(t, 30*time.Second, "collector health", func() bool {
		resp, err := http.Get("http://" + health + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return otlpHTTP, dashboard
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type apiRoute struct {
	Method, Route    string
	Requests, Errors int
	ErrorRate        float64 `json:"error_rate"`
	P99Ms            float64 `json:"p99_ms"`
	JaegerURL        string  `json:"jaeger_url"`
}

func TestDashboardInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	mix := knownMix()
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(otlpJSON(mix)))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
	}
	resp.Body.Close()

	// The JSON API the page uses: wait until every request is in.
	var routes []apiRoute
	waitFor(t, 20*time.Second, "all requests in /api/routes", func() bool {
		resp, err := http.Get("http://" + dash + "/api/routes?window=5m")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct{ Routes []apiRoute }
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		routes = body.Routes
		total := 0
		for _, r := range routes {
			total += r.Requests
		}
		return total == 1560
	})

	ctx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 900))...)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	tableRows := func() []string {
		t.Helper()
		rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#routes tbody tr")].map(tr => [...tr.cells].map(td => td.textContent).join("|"))`))
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	do(chromedp.Navigate("http://"+dash+"/"), chromedp.WaitVisible(`#routes tbody tr:nth-child(3)`))
	rowsText := tableRows()
	t.Logf("table rows:\n%s", strings.Join(rowsText, "\n"))

	// Expected routes, counts, error rates and p99 (within 1% of the exact value).
	want := map[string]route{}
	for _, r := range mix {
		want[r.method+" "+r.template] = r
	}
	if len(rowsText) != len(mix) {
		t.Fatalf("table has %d rows, want %d", len(rowsText), len(mix))
	}
	for _, row := range rowsText {
		c := strings.Split(row, "|") // service|env|method|route|rpm|requests|errors|rate|p50|p95|p99|max|traces
		r, ok := want[c[2]+" "+c[3]]
		if !ok {
			t.Errorf("unexpected route row %q", row)
			continue
		}
		if c[0] != "shop" || c[1] != "development" {
			t.Errorf("row %q: service/environment", row)
		}
		if c[5] != strconv.Itoa(len(r.latencies)) || c[6] != strconv.Itoa(r.errors) {
			t.Errorf("row %q: requests/errors, want %d/%d", row, len(r.latencies), r.errors)
		}
		if wantRate := fmt.Sprintf("%.1f%%", 100*float64(r.errors)/float64(len(r.latencies))); c[7] != wantRate {
			t.Errorf("row %q: error rate, want %s", row, wantRate)
		}
		p99, _ := strconv.ParseFloat(c[10], 64)
		exact := exactP99Ms(r.latencies)
		rel := math.Abs(p99-exact) / exact
		t.Logf("%s %s: p99 shown %.1f ms, exact %.3f ms, %.2f%% off", r.method, r.template, p99, exact, rel*100)
		if rel > 0.01+0.05/exact { // 1%, plus the page's rounding to 0.1 ms
			t.Errorf("row %q: p99 %.1f ms, exact %.3f ms (%.2f%% off)", row, p99, exact, rel*100)
		}
	}

	// The Jaeger link carries the service, the route and the p99 as minimum duration.
	for _, r := range routes {
		u, err := url.Parse(r.JaegerURL)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		wantMin := fmt.Sprintf("%dms", int64(math.Floor(r.P99Ms)))
		if q.Get("service") != "shop" || !strings.Contains(q.Get("tags"), `"http.route":"`+r.Route+`"`) || q.Get("minDuration") != wantMin {
			t.Errorf("Jaeger link of %s %s: %s (want service shop, tag http.route, minDuration %s)", r.Method, r.Route, r.JaegerURL, wantMin)
		}
	}
	hrefs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("td.jaeger a")].map(a => a.href)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(hrefs) != len(mix) || !strings.Contains(strings.Join(hrefs, " "), "minDuration=") {
		t.Errorf("page's Jaeger links: %v", hrefs)
	}

	// Sorting: the table starts by requests, descending; a click on "p99" sorts by it, descending first; a second
	// click reverses.
	first := text(`#routes tbody tr:first-child td.c-3`)
	do(chromedp.Click(`th[data-key="p99_ms"]`))
	desc := text(`#routes tbody tr:first-child td.c-3`)
	do(chromedp.Click(`th[data-key="p99_ms"]`))
	asc := text(`#routes tbody tr:first-child td.c-3`)
	if first != "/items/{id}" || desc != "/reports/{id}" || asc != "/items/{id}" {
		t.Errorf("sorting: first row %q by requests, %q by p99 descending, %q by p99 ascending", first, desc, asc)
	}

	// The window selector reloads the table from the API for that window.
	do(chromedp.SetValue(`#window`, "1m"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("window").dispatchEvent(new Event("change"))`)); err != nil {
		t.Fatal(err)
	}
	do(chromedp.Sleep(500 * time.Millisecond))
	status := text(`#status`)
	rowsText = tableRows()
	if len(rowsText) != len(mix) || !strings.HasPrefix(status, "updated") {
		t.Errorf("after choosing 1m: status %q, rows %v", status, rowsText)
	}
	var rpm string
	for _, row := range rowsText {
		if c := strings.Split(row, "|"); c[3] == "/items/{id}" {
			rpm = c[4]
		}
	}
	// 1200 requests, all recorded moments ago: the rate is over the time the history covers (at least one 30 s
	// slice, at most the 1-minute window), so between 1200 and 2400 per minute, never 1200 spread over an hour.
	if v, err := strconv.ParseFloat(rpm, 64); err != nil || v < 1200 || v > 2400 {
		t.Errorf("1m window: /items/{id} requests per minute %q, want 1200 requests over 30 s to 1 min", rpm)
	}
	shot(t, ctx, "dashboard.png")

	// The route page: server-drawn percentile lines and request/error bars.
	do(chromedp.Navigate("http://"+dash+"/route?"+url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"GET"}, "route": {"/items/{id}"}, "window": {"15m"}}.Encode()),
		chromedp.WaitVisible(`svg`))
	lines, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("polyline").length`))
	if err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("rect.requests").length`))
	if err != nil {
		t.Fatal(err)
	}
	if lines != 3 || bars < 1 {
		t.Errorf("route page: %d percentile lines, %d request bars", lines, bars)
	}
	shot(t, ctx, "route.png")
}

// shot saves a PNG (quality 100 makes Chromium encode PNG).
func shot(t *testing.T, ctx context.Context, name string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", filepath.Join(dir, name))
}

func chromiumPath(t *testing.T) string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	t.Fatal("no Chromium: make browser installs Debian's chromium")
	return ""
}
