package browser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ordersJSON is n requests of GET /orders/{order_id} (40 ms each) as OTLP/HTTP JSON, each with its child spans: a
// query for the order (4 ms), five queries for its items (2 ms each, one statement: an N+1 loop), a downstream
// call (9 ms), a custom span (20-30 ms) that wraps nothing; the request's own time is the rest.
func ordersJSON(n int) ([]byte, []string) {
	end := time.Now()
	start := end.Add(-40 * time.Millisecond)
	at := func(ms int) string {
		return strconv.FormatInt(start.Add(time.Duration(ms)*time.Millisecond).UnixNano(), 10)
	}
	attr := func(k, v string) map[string]any {
		return map[string]any{"key": k, "value": map[string]any{"stringValue": v}}
	}
	var spans []any
	var traceIDs []string
	for i := range n {
		trace := fmt.Sprintf("0b%030x", i+1)
		traceIDs = append(traceIDs, trace)
		id := func(k int) string { return fmt.Sprintf("%08x%08x", i+1, k) }
		add := func(k, parent int, name string, kind, from, to int, attrs ...map[string]any) {
			s := map[string]any{"traceId": trace, "spanId": id(k), "name": name, "kind": kind,
				"startTimeUnixNano": at(from), "endTimeUnixNano": at(to), "attributes": attrs}
			if parent != 0 {
				s["parentSpanId"] = id(parent)
			}
			spans = append(spans, s)
		}
		add(1, 0, "GET /orders/{order_id}", 2, 0, 40, attr("http.request.method", "GET"), attr("http.route", "/orders/{order_id}"),
			map[string]any{"key": "http.response.status_code", "value": map[string]any{"intValue": "200"}})
		add(2, 1, "SELECT shop", 3, 1, 5, attr("db.system.name", "sqlite"), attr("db.namespace", "shop"), attr("db.query.text", "SELECT * FROM orders WHERE id = ?"))
		for q := range 5 {
			add(3+q, 1, "SELECT shop", 3, 6+2*q, 8+2*q, attr("db.system.name", "sqlite"), attr("db.namespace", "shop"), attr("db.query.text", "SELECT * FROM items WHERE order_id = ?"))
		}
		add(8, 1, "GET", 3, 16, 25, attr("http.request.method", "GET"), attr("server.address", "payments"), attr("server.port", "8080"))
		add(9, 1, "render_receipt", 1, 28, 38)
	}
	body, _ := json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource":   map[string]any{"attributes": []any{attr("service.name", "orders"), attr("deployment.environment.name", "development")}},
		"scopeSpans": []any{map[string]any{"spans": spans}},
	}}})
	return body, traceIDs
}

// TestBreakdownInChromium: 30 requests with known child spans; the route page's breakdown chart draws the API's
// mean per category in every slice, its table lists the API's parts in the API's order with their time shares, and
// the N+1 badge and its example traces show.
func TestBreakdownInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	body, traceIDs := ordersJSON(30)
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
	}
	resp.Body.Close()

	q := url.Values{"service": {"orders"}, "environment": {"development"}, "method": {"GET"}, "route": {"/orders/{order_id}"}, "window": {"1m"}}
	var api struct {
		Points []struct {
			Start             string             `json:"start"`
			BreakdownRequests int                `json:"breakdown_requests"`
			BreakdownMs       map[string]float64 `json:"breakdown_ms"`
		}
		Breakdown struct {
			Requests int
			Parts    []struct {
				Category, Target string
				TimeShare        float64 `json:"time_share"`
				P50Ms            float64 `json:"p50_ms"`
			}
			NPlusOne struct {
				Requests int
				Examples []struct {
					TraceID string `json:"trace_id"`
				}
			} `json:"n_plus_one"`
		}
	}
	waitFor(t, 30*time.Second, "the 30 requests' breakdowns in /api/series", func() bool {
		getJSON(t, "http://"+dash+"/api/series?"+q.Encode(), &api)
		return api.Breakdown.Requests == 30
	})
	// By hand: database 4 + 5 x 2 = 14 ms, downstream 9 ms, the custom span 10 ms, the request's own 7 ms.
	want := map[string]float64{"db sqlite shop": 14, "http payments:8080": 9, "internal render_receipt": 10, "self ": 7}
	for _, p := range api.Breakdown.Parts {
		if w := want[p.Category+" "+p.Target]; math.Abs(p.P50Ms-w) > 0.01*w {
			t.Errorf("API part %s %s: p50 %.3f ms, computed by hand %.0f ms", p.Category, p.Target, p.P50Ms, w)
		}
	}
	if len(api.Breakdown.Parts) != len(want) || api.Breakdown.NPlusOne.Requests != 30 {
		t.Fatalf("API breakdown %+v", api.Breakdown)
	}

	ctx, cancel := browser(t, 1400)
	defer cancel()
	do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+q.Encode()), chromedp.WaitVisible(`#breakdown-chart svg`), chromedp.WaitVisible(`#breakdown-parts tr`))
	drawn := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#breakdown-chart")`)
	for _, p := range api.Points {
		for category, ms := range p.BreakdownMs {
			if got := drawn[p.Start][category]; math.Abs(got-ms) > 1e-9*ms {
				t.Errorf("slice %s: %s drawn %v ms, API %v ms", p.Start, category, got, ms)
			}
		}
		if p.BreakdownRequests == 0 && len(drawn[p.Start]) > 0 {
			t.Errorf("slice %s has no breakdown in the API but bars on the page: %v", p.Start, drawn[p.Start])
		}
	}
	if bad := eval[[]string](t, ctx, "("+chartCheckJS+`)("#breakdown-chart")`); len(bad) > 0 {
		t.Errorf("breakdown chart drawn off its scale: %v", bad)
	}
	rows := eval[[]map[string]string](t, ctx, `[...document.querySelectorAll("#breakdown-parts tr")].map(tr => ({part: tr.dataset.part, share: tr.cells[8].textContent}))`)
	if len(rows) != len(api.Breakdown.Parts) {
		t.Fatalf("table rows %v, API parts %v", rows, api.Breakdown.Parts)
	}
	for i, p := range api.Breakdown.Parts {
		wantShare := fmt.Sprintf("%.1f %%", 100*p.TimeShare)
		if rows[i]["part"] != p.Category+" "+p.Target || rows[i]["share"] != wantShare {
			t.Errorf("table row %d: %v, API %s %s with %s", i, rows[i], p.Category, p.Target, wantShare)
		}
	}
	badge := eval[string](t, ctx, `document.getElementById("nplusone").hidden ? "" : document.getElementById("nplusone").textContent`)
	if badge != "N+1: 100.0 % of requests run one statement up to 5 times" {
		t.Errorf("N+1 badge %q", badge)
	}
	examples := eval[[]string](t, ctx, `[...document.querySelectorAll("#nplusone-examples [data-trace-id]")].map(a => a.dataset.traceId)`)
	known := map[string]bool{}
	for _, id := range traceIDs {
		known[id] = true
	}
	if len(examples) == 0 {
		t.Error("no N+1 example traces on the page")
	}
	for _, id := range examples {
		if !known[id] {
			t.Errorf("N+1 example %s is not a trace that was sent", id)
		}
	}
	shot(t, ctx, "breakdown-1400.png")
}
