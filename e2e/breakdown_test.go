package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestBreakdownFromRealInstrumentation: the example service queries a real SQLite through otelsql (seven queries
// per order, five of them one statement: an N+1 loop) and calls a second service through an otelhttp client. The
// route page's API splits GET /orders/{order_id} within 1 % of the exact per-request values computed here from the
// spans the gateway stored, counts calls exactly and flags the N+1 loop; a real Prometheus scraping the gateway
// counts the requests of each part exactly.
func TestBreakdownFromRealInstrumentation(t *testing.T) {
	col := harness.StartCollector(t, []string{harness.ConfigPath("config.yaml")}, "DASHBOARD_SLICE=3s")
	prom := harness.StartPrometheus(t, false, col.RouteMetrics)
	inventory := harness.StartShopAPI(t, "inventory-bd", "development", col)
	shop := harness.StartShopAPI(t, "shop-bd", "development", col, "DOWNSTREAM_URL=http://"+inventory.Addr)
	const orders = 40
	for i := range orders {
		resp, err := http.Get(fmt.Sprintf("http://%s/orders/%d", shop.Addr, 1+i%100))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /orders/%d: %v %v", 1+i, err, resp)
		}
		resp.Body.Close()
	}
	shop.Stop()
	inventory.Stop()

	// Exact values from the stored spans: the handler runs its children one after another, so each category's
	// time is the sum of its spans' durations and the request's own time the rest.
	exact := map[string][]float64{} // category -> ms per request
	calls := map[string][]int{}
	harness.Eventually(t, 30*time.Second, "the orders' spans in the span file", func() (bool, string) {
		exact, calls = exactBreakdowns(t, filepath.Join(col.DataDir, "spans.jsonl"), "shop-bd", "GET /orders/{order_id}")
		return len(exact["self"]) == orders, fmt.Sprintf("%d of %d requests with their children", len(exact["self"]), orders)
	})
	for _, n := range calls["db"] {
		if n != 7 {
			t.Fatalf("a request has %d database spans, the handler runs 7 queries: %v", n, calls["db"])
		}
	}

	q := url.Values{"service": {"shop-bd"}, "environment": {"development"}, "method": {"GET"}, "route": {"/orders/{order_id}"}, "window": {"5m"}}
	var body struct {
		Breakdown struct {
			Requests int
			Parts    []struct {
				Category, Target string
				Calls            int
				CallsPerRequest  float64 `json:"calls_per_request"`
				P50Ms            float64 `json:"p50_ms"`
				P95Ms            float64 `json:"p95_ms"`
				P99Ms            float64 `json:"p99_ms"`
			}
			NPlusOne struct {
				Requests   int
				Statement  string
				MaxRepeats int `json:"max_repeats"`
			} `json:"n_plus_one"`
		}
	}
	harness.Eventually(t, 30*time.Second, "every order's breakdown on the route page's API", func() (bool, string) {
		text, err := harness.Get("http://" + col.Dashboard + "/api/series?" + q.Encode())
		if err == nil {
			err = json.Unmarshal([]byte(text), &body)
		}
		if err != nil {
			return false, err.Error()
		}
		return body.Breakdown.Requests == orders, fmt.Sprint(body.Breakdown.Requests)
	})
	targets := map[string]string{"db": "sqlite shop", "http": inventory.Addr, "self": ""}
	for _, p := range body.Breakdown.Parts {
		want, ok := targets[p.Category]
		if !ok || p.Target != want {
			t.Errorf("part %s %q: want only db %q, http %q and self", p.Category, p.Target, targets["db"], targets["http"])
			continue
		}
		values := slices.Clone(exact[p.Category])
		slices.Sort(values)
		for qi, got := range []float64{p.P50Ms, p.P95Ms, p.P99Ms} {
			w := values[int(math.Floor([]float64{0.5, 0.95, 0.99}[qi]*float64(len(values)-1)))]
			if math.Abs(got-w) > 0.01*w {
				t.Errorf("%s p%v: %.4f ms, exact %.4f ms", p.Category, []int{50, 95, 99}[qi], got, w)
			}
		}
		wantCalls := map[string]int{"db": 7 * orders, "http": orders, "self": 0}[p.Category]
		if p.Calls != wantCalls {
			t.Errorf("%s: %d calls, want %d", p.Category, p.Calls, wantCalls)
		}
	}
	if len(body.Breakdown.Parts) != 3 {
		t.Errorf("parts %+v", body.Breakdown.Parts)
	}
	np := body.Breakdown.NPlusOne
	if np.Requests != orders || np.Statement != "SELECT name, price FROM items WHERE id = ?" || np.MaxRepeats != 5 {
		t.Errorf("N+1: %+v, want all %d requests flagged on the item query, 5 repeats", np, orders)
	}
	var promParts map[string]float64
	harness.Eventually(t, 30*time.Second, "the breakdown metrics in Prometheus", func() (bool, string) {
		promParts = queryValues(t, prom, `sum by (breakdown_category) (http_server_route_breakdown_duration_seconds_count{service_name="shop-bd", http_route="/orders/{order_id}"})`, "breakdown_category")
		requests := queryValues(t, prom, `sum by (breakdown_category) (http_server_route_breakdown_requests_total{service_name="shop-bd", http_route="/orders/{order_id}"})`, "breakdown_category")
		want := map[string]float64{"db": orders, "http": orders, "self": orders}
		return mapsEqual(promParts, want) && mapsEqual(requests, want), fmt.Sprintf("histogram counts %v, requests %v", promParts, requests)
	})
	t.Logf("FIGURES breakdown: %d orders; API parts %+v; N+1 %+v; Prometheus requests per part %v", orders, body.Breakdown.Parts, np, promParts)
}

// exactBreakdowns reads the file exporter's spans and returns, for each server span of service named name that has
// its children, the time per category (ms) computed as sums of its children's durations, and the calls.
func exactBreakdowns(t *testing.T, file, service, name string) (map[string][]float64, map[string][]int) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	type node struct {
		span     ptrace.Span
		children []ptrace.Span
	}
	requests := map[string]*node{}
	var children []ptrace.Span
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var u ptrace.JSONUnmarshaler
	for sc.Scan() {
		td, err := u.UnmarshalTraces(sc.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			if v, _ := rs.Resource().Attributes().Get("service.name"); v.Str() != service {
				continue
			}
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				spans := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < spans.Len(); k++ {
					s := spans.At(k)
					if s.Kind() == ptrace.SpanKindServer && s.Name() == name {
						requests[s.SpanID().String()] = &node{span: s}
					} else if s.Kind() == ptrace.SpanKindClient {
						children = append(children, s)
					}
				}
			}
		}
	}
	for _, c := range children {
		if n, ok := requests[c.ParentSpanID().String()]; ok {
			n.children = append(n.children, c)
		}
	}
	exact, calls := map[string][]float64{}, map[string][]int{}
	ms := func(s ptrace.Span) float64 { return float64(s.EndTimestamp()-s.StartTimestamp()) / 1e6 }
	for _, n := range requests {
		if len(n.children) == 0 {
			continue
		}
		byCategory, count := map[string]float64{}, map[string]int{}
		for _, c := range n.children {
			category := "http"
			if _, ok := c.Attributes().Get("db.system.name"); ok {
				category = "db"
			}
			byCategory[category] += ms(c)
			count[category]++
		}
		exact["self"] = append(exact["self"], ms(n.span)-byCategory["db"]-byCategory["http"])
		for _, c := range []string{"db", "http"} {
			exact[c] = append(exact[c], byCategory[c])
			calls[c] = append(calls[c], count[c])
		}
	}
	return exact, calls
}
