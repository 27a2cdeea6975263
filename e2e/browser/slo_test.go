package browser

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// sloJSON is a batch for the objectives of environments/slos.yaml: 20 checkouts that fail (500), 95 item reads of
// 20 ms and 5 of 250 ms (over their 100 ms threshold).
func sloJSON() []byte {
	end := time.Now()
	var spans []any
	for i := range 20 {
		spans = append(spans, serverSpanJSON(i+1, "0c", "POST", "/checkout", 500, 30*time.Millisecond, end))
	}
	for i := range 100 {
		d := 20 * time.Millisecond
		if i%20 == 0 {
			d = 250 * time.Millisecond
		}
		spans = append(spans, serverSpanJSON(101+i, "0c", "GET", "/items/{item_id}", 200, d, end))
	}
	return exportJSON(map[string]string{"service.name": "shop", "deployment.environment.name": "development"}, spans)
}

type apiSLO struct {
	Name, State, Method, Route string
	Good, Bad                  int
	Compliance                 *float64
	ThresholdMs                *float64 `json:"threshold_ms"`
}

// TestSLOViewInChromium: the objectives' rows on the overview and on the route page are the API's (good, bad,
// state), and the latency objective's threshold is drawn across the route's latency chart at its value.
func TestSLOViewInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t, "environments/slos.yaml")
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(sloJSON()))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
	}
	resp.Body.Close()
	var api struct{ Objectives []apiSLO }
	waitFor(t, 30*time.Second, "both objectives in /api/slos", func() bool {
		getJSON(t, "http://"+dash+"/api/slos?service=shop", &api)
		return len(api.Objectives) == 2 && api.Objectives[0].Good+api.Objectives[0].Bad == 20 && api.Objectives[1].Good+api.Objectives[1].Bad == 100
	})
	want := map[string]apiSLO{"checkout-availability": {Good: 0, Bad: 20, State: "critical"}, "items-latency": {Good: 95, Bad: 5}}
	for _, o := range api.Objectives {
		w := want[o.Name]
		if o.Good != w.Good || o.Bad != w.Bad || (w.State != "" && o.State != w.State) {
			t.Errorf("API %s: good %d bad %d state %q, sent good %d bad %d (state %q)", o.Name, o.Good, o.Bad, o.State, w.Good, w.Bad, w.State)
		}
	}

	ctx, cancel := browser(t, 1400)
	defer cancel()
	// cells counts the row's HTML cells laid out with a height: what a reader sees, not only what the DOM holds.
	rowsJS := `[...document.querySelectorAll("#slo-table tr")].map(tr => ({name: tr.dataset.slo, route: tr.dataset.route,
	  good: tr.querySelector(".good-requests").textContent, bad: tr.querySelector(".bad-requests").textContent, state: tr.querySelector(".state").textContent,
	  cells: String([...tr.cells].filter(td => td.offsetHeight > 0).length),
	  headers: String(tr.closest("table").tHead.rows[0].cells.length)}))`
	check := func(page string, objectives []apiSLO) {
		rows := eval[[]map[string]string](t, ctx, rowsJS)
		if len(rows) != len(objectives) {
			t.Fatalf("%s: %d objective rows, the API has %d: %v", page, len(rows), len(objectives), rows)
		}
		for i, o := range objectives {
			r := rows[i]
			if r["cells"] != r["headers"] {
				t.Errorf("%s row %d: %s cells shown under %s headers", page, i, r["cells"], r["headers"])
			}
			if r["name"] != o.Name || r["route"] != o.Method+" "+o.Route || r["good"] != strconv.Itoa(o.Good) || r["bad"] != strconv.Itoa(o.Bad) || r["state"] != o.State {
				t.Errorf("%s row %d: %v, API %+v", page, i, r, o)
			}
		}
	}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/?service=shop&window=1m"), chromedp.WaitVisible(`#slo-table tr`))
	check("overview", api.Objectives)

	q := url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"GET"}, "route": {"/items/{item_id}"}, "window": {"1m"}}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+q.Encode()), chromedp.WaitVisible(`#slo-table tr`), chromedp.WaitVisible(`#latency-chart svg`))
	check("route page", api.Objectives[1:])
	drawn := eval[[]float64](t, ctx, `[...document.querySelectorAll('#latency-chart circle[data-series="threshold-items-latency"]')].map(c => +c.dataset.value)`)
	if len(drawn) == 0 {
		t.Fatal("no threshold line on the latency chart")
	}
	for _, v := range drawn {
		if v != *api.Objectives[1].ThresholdMs {
			t.Errorf("threshold drawn at %v ms, the objective's is %v", v, *api.Objectives[1].ThresholdMs)
		}
	}
	if bad := eval[[]string](t, ctx, "("+chartCheckJS+`)("#latency-chart")`); len(bad) > 0 {
		t.Errorf("latency chart drawn off its scale: %v", bad)
	}
}
