// Package browser drives the route dashboard of a real otelcol-apm process in real headless Chromium.
package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
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

// route is one route of the known mix: its requests' latencies and how many fail. Declared routes carry
// http.route; the others only a raw path.
type route struct {
	service, method, template, path string
	declared                        bool
	status                          int
	latencies                       []time.Duration
	errors                          int
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
		{"shop", "GET", "/items/{id}", "/items/%d", true, 200, lognormal(1200, 0.030, 0.6), 36},
		{"shop", "POST", "/checkout", "/checkout", true, 200, lognormal(300, 0.180, 0.4), 45},
		{"shop", "GET", "/reports/{id}", "/reports/%d", true, 200, lognormal(60, 0.900, 0.3), 0},
		{"shop", "GET", "/healthz", "/healthz", true, 200, lognormal(240, 0.0004, 0.3), 0}, // sub-millisecond
		// A scanner: 404s without a route, of a service that declares its routes.
		{"shop", "GET", "{unmatched}", "/wp-admin/%d.php", false, 404, lognormal(90, 0.002, 0.2), 0},
		// One request on an old raw path: a guessed route with one hit.
		{"shop", "GET", "/legacy/{id}/export", "/legacy/%d/export", false, 200, lognormal(1, 0.05, 0.1), 0},
		{"catalog", "GET", "/products/{id}", "/products/%d", true, 200, lognormal(400, 0.012, 0.5), 4},
	}
}

// otlpJSON encodes the spans [from, to) of every route of the mix as one OTLP/HTTP JSON request; traceIDs gets
// each span's trace id by service and route.
func otlpJSON(mix []route, part, parts int, traceIDs map[string][]string) []byte {
	end := time.Now()
	byService := map[string][]map[string]any{}
	for ri, r := range mix {
		from, to := len(r.latencies)*part/parts, len(r.latencies)*(part+1)/parts
		for i := from; i < to; i++ {
			d := r.latencies[i]
			status := r.status
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
			name := r.method + " " + path
			if r.declared {
				attrs = append(attrs, map[string]any{"key": "http.route", "value": map[string]any{"stringValue": r.template}})
				name = r.method + " " + r.template
			}
			traceID := fmt.Sprintf("%08x%08x%016x", ri+1, part+1, i+1)
			traceIDs[r.service+" "+r.template] = append(traceIDs[r.service+" "+r.template], traceID)
			span := map[string]any{
				"traceId": traceID, "spanId": fmt.Sprintf("%016x", i+1), "name": name, "kind": 2,
				"startTimeUnixNano": strconv.FormatInt(end.Add(-d).UnixNano(), 10), "endTimeUnixNano": strconv.FormatInt(end.UnixNano(), 10),
				"attributes": attrs,
			}
			if status >= 500 {
				span["status"] = map[string]any{"code": 2}
			}
			byService[r.service] = append(byService[r.service], span)
		}
	}
	var resourceSpans []any
	for service, spans := range byService {
		resourceSpans = append(resourceSpans, map[string]any{
			"resource": map[string]any{"attributes": []any{
				map[string]any{"key": "service.name", "value": map[string]any{"stringValue": service}},
				map[string]any{"key": "deployment.environment.name", "value": map[string]any{"stringValue": "development"}},
			}},
			"scopeSpans": []any{map[string]any{"spans": spans}},
		})
	}
	body, _ := json.Marshal(map[string]any{"resourceSpans": resourceSpans})
	return body
}

func exactP99Ms(latencies []time.Duration) float64 {
	s := slices.Clone(latencies)
	slices.Sort(s)
	return float64(s[int(math.Floor(0.99*float64(len(s)-1)))]) / 1e6
}

func startCollector(t *testing.T, overlays ...string) (otlpHTTP, dashboard string) {
	bin := os.Getenv("OTELCOL_APM_BIN")
	if bin == "" {
		t.Fatal("OTELCOL_APM_BIN is not set: run through make (make browser)")
	}
	root, _ := filepath.Abs("../..")
	otlpHTTP, dashboard, health := freeAddr(t), freeAddr(t), freeAddr(t)
	args := []string{"--config", filepath.Join(root, "config.yaml")}
	for _, o := range overlays {
		args = append(args, "--config", filepath.Join(root, o))
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"OTLP_GRPC_ENDPOINT="+freeAddr(t), "OTLP_HTTP_ENDPOINT="+otlpHTTP, "HEALTH_CHECK_ENDPOINT="+health,
		"ROUTE_METRICS_ENDPOINT="+freeAddr(t), "TELEMETRY_METRICS_PORT="+strings.Split(freeAddr(t), ":")[1],
		"OTELCOL_APM_DATA_DIR="+t.TempDir(), "ROUTE_METRICS_FLUSH_INTERVAL=1s", "DASHBOARD_SLICE=3s",
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

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type apiRoute struct {
	Service, Method, Route string
	Requests, Errors       int
	P99Ms                  float64 `json:"p99_ms"`
	RequestsPerMinute      float64 `json:"requests_per_minute"`
	Impact                 float64
	Junk                   bool
	JaegerURL              string `json:"jaeger_url"`
}

type apiSeries struct {
	Points  []map[string]any `json:"points"`
	Summary struct {
		Requests int                `json:"requests"`
		P99Ms    float64            `json:"p99_ms"`
		Status   map[string]float64 `json:"status"`
	} `json:"summary"`
	Distribution []struct {
		Count int `json:"count"`
	} `json:"distribution"`
	Slowest []struct {
		TraceID   string `json:"trace_id"`
		JaegerURL string `json:"jaeger_url"`
	} `json:"slowest"`
	JaegerURL string `json:"jaeger_url"`
}

// browser opens headless Chromium at a width.
func browser(t *testing.T, width int) (context.Context, func()) {
	ctx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(width, 1000))...)
	ctx, cancelCtx := chromedp.NewContext(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// chartCheckJS returns, for the chart in container, every drawn element whose position disagrees with its own
// value under the chart's scale (bars: height; points: cy), as strings; [] when the drawing is faithful.
const chartCheckJS = `(sel) => {
  const svg = document.querySelector(sel + " svg.chart");
  if (!svg) return ["no chart in " + sel];
  const top = +svg.dataset.plotTop, h = +svg.dataset.plotHeight, ymax = +svg.dataset.ymax, bad = [];
  for (const r of svg.querySelectorAll("rect.bar, rect.bucket")) {
    const v = +(r.dataset.value ?? r.dataset.count), want = h * v / ymax;
    if (Math.abs(+r.getAttribute("height") - want) > 0.6) bad.push("bar " + v + " height " + r.getAttribute("height") + " want " + want);
  }
  for (const c of svg.querySelectorAll("circle.pt")) {
    const v = +c.dataset.value, want = top + h * (1 - v / ymax);
    if (Math.abs(+c.getAttribute("cy") - want) > 0.6) bad.push("point " + v + " cy " + c.getAttribute("cy") + " want " + want);
  }
  return bad;
}`

// drawn collects a chart's elements' values by slice and series: {slice: {series: value}}.
const drawnJS = `(sel) => {
  const out = {};
  for (const e of document.querySelectorAll(sel + " svg.chart [data-slice]")) {
    (out[e.dataset.slice] ||= {})[e.dataset.series] = +e.dataset.value;
  }
  return out;
}`

func TestDashboardInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	mix := knownMix()
	traceIDs := map[string][]string{}
	// Four batches 3.5 s apart: the page has several slices (3 s each) to draw.
	const parts = 4
	for part := range parts {
		resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(otlpJSON(mix, part, parts, traceIDs)))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
		}
		resp.Body.Close()
		if part < parts-1 {
			time.Sleep(3500 * time.Millisecond)
		}
	}
	total := 0
	for _, r := range mix {
		total += len(r.latencies)
	}
	var routes []apiRoute
	waitFor(t, 20*time.Second, "all requests in /api/routes", func() bool {
		var body struct{ Routes []apiRoute }
		getJSON(t, "http://"+dash+"/api/routes?window=1m", &body)
		routes = body.Routes
		n := 0
		for _, r := range routes {
			n += r.Requests
		}
		return n == total
	})

	for _, width := range []int{1400, 700} {
		t.Run(fmt.Sprintf("%dpx", width), func(t *testing.T) {
			ctx, cancel := browser(t, width)
			defer cancel()
			checkOverview(t, ctx, dash, mix, width)
			checkRoutePage(t, ctx, dash, mix, traceIDs, width)
		})
	}
}

func checkOverview(t *testing.T, ctx context.Context, dash string, mix []route, width int) {
	do(t, ctx, chromedp.Navigate("http://"+dash+"/?window=1m&service=shop"), chromedp.WaitVisible(`#routes-main tr`),
		chromedp.WaitVisible(`#latency-chart svg`))

	// Every bar and point against /api/series.
	var series apiSeries
	getJSON(t, "http://"+dash+"/api/series?window=1m&service=shop", &series)
	// Slices that hold only breakdowns (recorded a grace after their requests) have no latency to draw.
	series.Points = slices.DeleteFunc(series.Points, func(p map[string]any) bool { return p["requests"].(float64) == 0 })
	if len(series.Points) < 2 {
		t.Fatalf("want several slices, API has %d", len(series.Points))
	}
	bars := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#requests-chart")`)
	lines := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#latency-chart")`)
	for _, p := range series.Points {
		start := p["start"].(string)
		requests, errors := p["requests"].(float64), p["errors"].(float64)
		b := bars[start]
		if b["ok"]+b["errors"] != requests || b["errors"] != errors {
			t.Errorf("slice %s: bars %v, API %v requests %v errors", start, b, requests, errors)
		}
		for _, q := range []string{"p50", "p95", "p99"} {
			if got, want := lines[start][q], p[q+"_ms"].(float64); math.Abs(got-want) > 1e-9*want {
				t.Errorf("slice %s: %s drawn at %v, API %v", start, q, got, want)
			}
		}
	}
	if len(bars) != len(series.Points) || len(lines) != len(series.Points) {
		t.Errorf("drawn %d bar slices and %d point slices, API %d slices", len(bars), len(lines), len(series.Points))
	}
	for _, chart := range []string{"#requests-chart", "#latency-chart"} {
		if bad := eval[[]string](t, ctx, "("+chartCheckJS+`)("`+chart+`")`); len(bad) > 0 {
			t.Errorf("%s drawn off its scale: %v", chart, bad)
		}
	}

	// The table: declared routes by impact, the junk below, hidden until asked for; p99 within 1 % of exact.
	main := eval[[]string](t, ctx, `[...document.querySelectorAll("#routes-main tr")].map(tr => tr.dataset.route)`)
	wantMain := []string{}
	for _, r := range sortedByImpact(t, dash) {
		if !r.Junk {
			wantMain = append(wantMain, r.Method+" "+r.Route)
		}
	}
	if !slices.Equal(main, wantMain) {
		t.Errorf("declared rows %v, want by impact %v", main, wantMain)
	}
	if eval[bool](t, ctx, `!document.getElementById("routes-junk").hidden`) {
		t.Error("junk rows shown before they were asked for")
	}
	do(t, ctx, chromedp.Click(`#junk-toggle`), chromedp.WaitVisible(`#routes-junk tr`))
	junk := eval[[]string](t, ctx, `[...document.querySelectorAll("#routes-junk tr")].map(tr => tr.dataset.route)`)
	slices.Sort(junk)
	if !slices.Equal(junk, []string{"GET /legacy/{id}/export", "GET {unmatched}"}) {
		t.Errorf("junk rows %v", junk)
	}
	checkRateColumn(t, ctx, dash)
	if !eval[bool](t, ctx, `(() => { const rows = [...document.querySelectorAll("#routes tbody tr[data-route]")];
	  const firstJunk = rows.findIndex(r => r.classList.contains("junk"));
	  return firstJunk > 0 && rows.slice(firstJunk).every(r => r.classList.contains("junk")); })()`) {
		t.Error("a junk row sits above a declared route")
	}
	for _, r := range mix {
		if !r.declared || r.service != "shop" {
			continue
		}
		got := eval[float64](t, ctx, fmt.Sprintf(`+document.querySelector('#routes-main tr[data-route="%s %s"] td.c-p99').dataset.value`, r.method, r.template))
		exact := exactP99Ms(r.latencies)
		if rel := math.Abs(got-exact) / exact; rel > 0.01 {
			t.Errorf("%s %s: p99 %.4f ms, exact %.4f ms (%.2f %% off)", r.method, r.template, got, exact, 100*rel)
		}
	}
	healthz := eval[string](t, ctx, `document.querySelector('#routes-main tr[data-route="GET /healthz"] td.c-p99').textContent`)
	if !strings.HasSuffix(healthz, "µs") {
		t.Errorf("a sub-millisecond p99 reads %q, want microseconds", healthz)
	}

	// URL state: sort, junk, window; back and forward; a reload restores the view.
	do(t, ctx, chromedp.Click(`th[data-key="p99_ms"]`), chromedp.Sleep(300*time.Millisecond))
	if q := eval[string](t, ctx, `location.search`); !strings.Contains(q, "sort=p99_ms") || !strings.Contains(q, "junk=1") {
		t.Errorf("after sorting by p99 the address is %q", q)
	}
	first := eval[string](t, ctx, `document.querySelector("#routes-main tr").dataset.route`)
	if first != "GET /reports/{id}" {
		t.Errorf("sorted by p99, first row %q", first)
	}
	do(t, ctx, chromedp.SetValue(`#window`, "5m"))
	eval[bool](t, ctx, `document.getElementById("window").dispatchEvent(new Event("change"))`)
	do(t, ctx, chromedp.Sleep(300*time.Millisecond))
	if q := eval[string](t, ctx, `location.search`); !strings.Contains(q, "window=5m") {
		t.Errorf("after choosing 5m the address is %q", q)
	}
	eval[bool](t, ctx, `(history.back(), true)`)
	do(t, ctx, chromedp.Sleep(500*time.Millisecond))
	if w := eval[string](t, ctx, `document.getElementById("window").value`); w != "1m" {
		t.Errorf("back: window %q, want 1m", w)
	}
	addr := eval[string](t, ctx, `location.href`)
	do(t, ctx, chromedp.Navigate(addr), chromedp.WaitVisible(`#routes-main tr`), chromedp.Sleep(300*time.Millisecond))
	if s := eval[string](t, ctx, `document.querySelector("th.sorted").dataset.key + " " + document.getElementById("window").value + " " + !document.getElementById("routes-junk").hidden`); s != "p99_ms 1m true" {
		t.Errorf("reloading %s restored %q, want sort p99_ms, window 1m, junk shown", addr, s)
	}
	if f := eval[string](t, ctx, `document.getElementById("status").textContent`); !strings.Contains(f, "data as of") || !strings.Contains(f, "new data every 1 s") {
		t.Errorf("freshness line %q", f)
	}
	checkLayout(t, ctx, width)
	shot(t, ctx, fmt.Sprintf("overview-%d.png", width))
}

// checkRateColumn: the Rate column reads in one unit on every row, declared and junk (the mix spans a few per minute
// to thousands, so a unit per cell would mix /min and /s), and the cells are the API's rates in that unit. The page
// drew its table a moment before this asks the API, and a rate is over the time the history covers, which may have
// grown by a slice since: one factor, the same on every row, relates the two.
func checkRateColumn(t *testing.T, ctx context.Context, dash string) {
	cells := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("#routes tbody tr[data-route]")].map(tr => [tr.dataset.route, tr.querySelector("td.c-rate").textContent]))`)
	perMinute := map[string]float64{"s": 60, "min": 1}
	units := map[string]bool{}
	factors := map[string]float64{}
	for _, r := range sortedByImpact(t, dash) {
		text, ok := cells[r.Method+" "+r.Route]
		if !ok {
			t.Errorf("no rate cell for %s %s", r.Method, r.Route)
			continue
		}
		number, unit, _ := strings.Cut(text, "/")
		units[unit] = true
		v, err := strconv.ParseFloat(number, 64)
		if err != nil || perMinute[unit] == 0 {
			t.Errorf("%s %s: rate %q is not a number per second or minute", r.Method, r.Route, text)
			continue
		}
		factors[text] = v * perMinute[unit] / r.RequestsPerMinute
	}
	if len(units) != 1 {
		t.Errorf("the rate column mixes units: %v", cells)
	}
	values := slices.Collect(maps.Values(factors))
	slices.Sort(values)
	if len(values) == 0 || values[0] < 0.5 || values[len(values)-1] > 2 || values[len(values)-1]/values[0] > 1.03 {
		t.Errorf("rate cells against the API's rates, by cell (one factor expected, within display rounding): %v", factors)
	}
}

func sortedByImpact(t *testing.T, dash string) []apiRoute {
	var body struct{ Routes []apiRoute }
	getJSON(t, "http://"+dash+"/api/routes?window=1m&service=shop", &body)
	return body.Routes // the API's order: declared by impact, then junk
}

func checkRoutePage(t *testing.T, ctx context.Context, dash string, mix []route, traceIDs map[string][]string, width int) {
	q := url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"POST"}, "route": {"/checkout"}, "window": {"1m"}}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+q.Encode()), chromedp.WaitVisible(`#distribution-chart svg`))
	var s apiSeries
	getJSON(t, "http://"+dash+"/api/series?"+q.Encode(), &s)
	lines := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#latency-chart")`)
	bars := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#requests-chart")`)
	status := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#status-chart")`)
	for _, p := range s.Points {
		start := p["start"].(string)
		for _, k := range []string{"p50", "p95", "p99"} {
			if got, want := lines[start][k], p[k+"_ms"].(float64); math.Abs(got-want) > 1e-9*want {
				t.Errorf("route page slice %s: %s drawn %v, API %v", start, k, got, want)
			}
		}
		if bars[start]["ok"]+bars[start]["errors"] != p["requests"].(float64) || bars[start]["errors"] != p["errors"].(float64) {
			t.Errorf("route page slice %s: bars %v, API %v", start, bars[start], p)
		}
		st := p["status"].(map[string]any)
		for _, class := range []string{"2xx", "5xx"} {
			if status[start][class] != st[class].(float64) {
				t.Errorf("slice %s: %s bar %v, API %v", start, class, status[start][class], st[class])
			}
		}
	}
	for _, chart := range []string{"#latency-chart", "#requests-chart", "#status-chart", "#distribution-chart"} {
		if bad := eval[[]string](t, ctx, "("+chartCheckJS+`)("`+chart+`")`); len(bad) > 0 {
			t.Errorf("%s drawn off its scale: %v", chart, bad)
		}
	}
	drawnTotal := eval[int](t, ctx, `[...document.querySelectorAll("#distribution-chart rect.bucket")].reduce((s, r) => s + +r.dataset.count, 0)`)
	apiTotal := 0
	for _, b := range s.Distribution {
		apiTotal += b.Count
	}
	if drawnTotal != s.Summary.Requests || apiTotal != s.Summary.Requests || s.Summary.Requests != 300 {
		t.Errorf("distribution: drawn %d, API %d, requests %d (sent 300)", drawnTotal, apiTotal, s.Summary.Requests)
	}
	// The slowest requests link to their traces by the trace ids that were sent.
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll("#slowest tr")].map(tr => tr.dataset.traceId + " " + tr.querySelector("a").href)`)
	sent := traceIDs["shop /checkout"]
	if len(rows) == 0 || len(rows) != len(s.Slowest) {
		t.Errorf("slowest: %d rows on the page, %d in the API", len(rows), len(s.Slowest))
	}
	for i, row := range rows {
		id, href, _ := strings.Cut(row, " ")
		if !slices.Contains(sent, id) || id != s.Slowest[i].TraceID || href != "http://127.0.0.1:16686/trace/"+id {
			t.Errorf("slowest row %q: not a sent trace id with its Jaeger link", row)
		}
	}
	if href := eval[string](t, ctx, `document.getElementById("jaeger").href`); !strings.Contains(href, "minDuration=") || !strings.Contains(href, "lookback=custom") {
		t.Errorf("slower-than-p99 link %q", href)
	}
	checkLayout(t, ctx, width)
	shot(t, ctx, fmt.Sprintf("route-%d.png", width))
}

// checkLayout: nothing but the routes table (which scrolls in its own box) is wider than the window.
func checkLayout(t *testing.T, ctx context.Context, width int) {
	wide := eval[[]string](t, ctx, fmt.Sprintf(`[...document.querySelectorAll("body > *, .charts > div, svg.chart")]
	  .filter(e => !e.classList.contains("table-wrap") && e.getBoundingClientRect().right > %d).map(e => e.tagName + "#" + e.id + " " + Math.round(e.getBoundingClientRect().right))`, width))
	if len(wide) > 0 || eval[int](t, ctx, `document.documentElement.scrollWidth`) > width {
		t.Errorf("at %d px, wider than the window: %v (page %d px)", width, wide, eval[int](t, ctx, `document.documentElement.scrollWidth`))
	}
}

// shot saves a PNG (quality 100 makes Chromium encode PNG).
func shot(t *testing.T, ctx context.Context, name string) {
	shotOf(t, ctx, name, chromedp.FullScreenshot(100))
}

func shotOf(t *testing.T, ctx context.Context, name string, capture chromedp.Action[[]byte]) {
	png, err := chromedp.Run(ctx, capture)
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

// TestScreenshots photographs a running demo's dashboard (`make screenshots` starts the demo and sets
// SCREENSHOT_DEMO to its address): the overview of the shop service over the last minute and its busiest route's
// page, for the README.
func TestScreenshots(t *testing.T) {
	base := os.Getenv("SCREENSHOT_DEMO")
	if base == "" {
		t.Skip("SCREENSHOT_DEMO is not set: make screenshots runs the demo and sets it")
	}
	ctx, cancel := browser(t, 1400)
	defer cancel()
	do(t, ctx, chromedp.Navigate(base+"/?window=1m&service=shop"), chromedp.WaitVisible(`#routes-main tr`),
		chromedp.WaitVisible(`#latency-chart svg circle`), chromedp.Sleep(500*time.Millisecond))
	shot(t, ctx, "dashboard.png")
	href := eval[string](t, ctx, `[...document.querySelectorAll("#routes-main tr")].sort((a, b) => b.dataset.requests - a.dataset.requests)[0].querySelector("td.c-route a").href`)
	do(t, ctx, chromedp.Navigate(href), chromedp.WaitVisible(`#distribution-chart svg rect.bucket`), chromedp.Sleep(500*time.Millisecond))
	shot(t, ctx, "route.png")
	orders := url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"GET"}, "route": {"/orders/{order_id}"}, "window": {"1m"}}
	do(t, ctx, chromedp.Navigate(base+"/route?"+orders.Encode()), chromedp.WaitVisible(`#breakdown-chart svg rect.bar`),
		chromedp.WaitVisible(`#breakdown-parts tr`), chromedp.Sleep(500*time.Millisecond))
	shot(t, ctx, "breakdown.png")
	do(t, ctx, chromedp.Navigate(base+"/?window=1h&service=shop"), chromedp.WaitVisible(`#slo-table tr`), chromedp.Sleep(500*time.Millisecond))
	shotOf(t, ctx, "slo.png", chromedp.Screenshot(`#slo-section`))
	do(t, ctx, chromedp.WaitVisible(`#versions-table tr`))
	shotOf(t, ctx, "versions.png", chromedp.Screenshot(`#versions-section`))
	do(t, ctx, chromedp.WaitVisible(`#errors-table tr`))
	shotOf(t, ctx, "errors.png", chromedp.Screenshot(`#errors-section`))
	reports := url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"GET"}, "route": {"/reports/slow"}, "window": {"5m"}}
	do(t, ctx, chromedp.Navigate(base+"/route?"+reports.Encode()), chromedp.WaitVisible(`#compare-table tr`),
		chromedp.WaitVisible(`#heatmap-chart svg rect.cell`), chromedp.Sleep(500*time.Millisecond))
	shot(t, ctx, "route-versions.png")
}
