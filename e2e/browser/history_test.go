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

// bimodalJSON: 60 requests of a route, half at 8 ms and half at 400 ms (a cache hit or miss): the heatmap's two
// bands.
func bimodalJSON() []byte {
	end := time.Now()
	var spans []any
	for i := range 60 {
		d := 8 * time.Millisecond
		if i%2 == 1 {
			d = 400 * time.Millisecond
		}
		spans = append(spans, serverSpanJSON(i+1, "0d", "GET", "/search", 200, d, end))
	}
	return exportJSON(map[string]string{"service.name": "search", "deployment.environment.name": "development"}, spans)
}

// TestWindowsAndHeatmapInChromium: the route page at 1 h, 1 d and 7 d (answered from 30 s, 10 min and 1 h slices):
// the requests chart draws the API's points and the heatmap's cells are the API's counts per slice and bucket, two
// bands for a bimodal route.
func TestWindowsAndHeatmapInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(bimodalJSON()))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
	}
	resp.Body.Close()
	ctx, cancel := browser(t, 1400)
	defer cancel()
	for _, window := range []string{"1h", "1d", "7d"} {
		q := url.Values{"service": {"search"}, "environment": {"development"}, "method": {"GET"}, "route": {"/search"}, "window": {window}}
		var api struct {
			SliceSeconds float64 `json:"slice_seconds"`
			Points       []struct {
				Start    string
				Requests int
				Heatmap  []int
			}
			Distribution []struct{ Count int }
		}
		waitFor(t, 30*time.Second, "the 60 requests in the "+window+" window", func() bool {
			getJSON(t, "http://"+dash+"/api/series?"+q.Encode(), &api)
			n := 0
			for _, p := range api.Points {
				n += p.Requests
			}
			return n == 60
		})
		if want := map[string]float64{"1h": 3, "1d": 600, "7d": 3600}[window]; api.SliceSeconds != want {
			t.Errorf("%s: slices of %v s, want %v", window, api.SliceSeconds, want)
		}
		do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+q.Encode()), chromedp.WaitVisible(`#heatmap-chart svg rect.cell`))
		cells := eval[map[string]map[string]int](t, ctx, `(() => { const out = {};
		  for (const c of document.querySelectorAll("#heatmap-chart rect.cell")) (out[c.dataset.slice] ||= {})[c.dataset.bucket] = +c.dataset.count;
		  return out; })()`)
		bands := map[int]bool{}
		for _, p := range api.Points {
			for i, n := range p.Heatmap {
				if got := cells[p.Start][strconv.Itoa(i)]; got != n {
					t.Errorf("%s slice %s bucket %d: %d drawn, API %d", window, p.Start, i, got, n)
				}
				if n > 0 {
					bands[i] = true
				}
			}
		}
		if len(bands) != 2 {
			t.Errorf("%s: a bimodal route in %d latency bands, want 2: %v", window, len(bands), api.Points)
		}
		drawn := eval[map[string]map[string]float64](t, ctx, "("+drawnJS+`)("#requests-chart")`)
		for _, p := range api.Points {
			if got := drawn[p.Start]["ok"] + drawn[p.Start]["errors"]; int(got) != p.Requests {
				t.Errorf("%s slice %s: bars of %v requests, API %d", window, p.Start, got, p.Requests)
			}
		}
		if bad := eval[[]string](t, ctx, "("+chartCheckJS+`)("#requests-chart")`); len(bad) > 0 {
			t.Errorf("%s: requests chart off its scale: %v", window, bad)
		}
		if options := eval[[]string](t, ctx, `[...document.querySelectorAll("#window option")].map(o => o.value)`); len(options) < 7 {
			t.Errorf("window options %v: want 1m to 7d", options)
		}
	}
}
