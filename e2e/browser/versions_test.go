package browser

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// versionJSON: n requests of GET /pay by the "payments" service as one version.
func versionJSON(version string, n int, d time.Duration, first int) []byte {
	end := time.Now()
	var spans []any
	for i := range n {
		spans = append(spans, serverSpanJSON(first+i+1, "0e", "GET", "/pay", 200, d, end))
	}
	return exportJSON(map[string]string{"service.name": "payments", "deployment.environment.name": "development", "service.version": version}, spans)
}

// TestVersionsInChromium: two versions of a service, the second slower: the overview's versions table lists them
// as the API does, newest first, with the slower route flagged; the route page compares them side by side and its
// charts mark each version where it was first seen.
func TestVersionsInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	post := func(body []byte) {
		resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	post(versionJSON("2.3.0", 40, 20*time.Millisecond, 0))
	var api struct {
		Versions []struct {
			Version   string
			FirstSeen string `json:"first_seen"`
			Requests  int
			Changed   []struct{ What string }
		}
	}
	q := "service=payments&environment=development"
	waitFor(t, 30*time.Second, "2.3.0 in /api/versions", func() bool {
		getJSON(t, "http://"+dash+"/api/versions?"+q, &api)
		return len(api.Versions) == 1 && api.Versions[0].Requests == 40
	})
	time.Sleep(4 * time.Second) // a later slice for the second version's marker
	post(versionJSON("2.4.0", 40, 80*time.Millisecond, 100))
	waitFor(t, 30*time.Second, "2.4.0 in /api/versions", func() bool {
		getJSON(t, "http://"+dash+"/api/versions?"+q, &api)
		return len(api.Versions) == 2 && api.Versions[0].Requests == 40
	})
	if len(api.Versions[0].Changed) != 1 || api.Versions[0].Changed[0].What != "slower" {
		t.Fatalf("2.4.0 changed: %+v, want GET /pay slower", api.Versions[0].Changed)
	}

	ctx, cancel := browser(t, 1400)
	defer cancel()
	do(t, ctx, chromedp.Navigate("http://"+dash+"/?service=payments&environment=development&window=5m"), chromedp.WaitVisible(`#versions-table tr`))
	rows := eval[[]map[string]string](t, ctx, `[...document.querySelectorAll("#versions-table tr")].map(tr => ({version: tr.dataset.version,
	  requests: tr.querySelector(".requests").textContent, changed: tr.querySelector(".changed").textContent, shown: String(tr.offsetHeight > 0)}))`)
	if len(rows) != 2 {
		t.Fatalf("versions rows %v", rows)
	}
	for i, v := range api.Versions {
		if rows[i]["version"] != v.Version || rows[i]["requests"] != strconv.Itoa(v.Requests) || rows[i]["shown"] != "true" {
			t.Errorf("versions row %d: %v, API %+v", i, rows[i], v)
		}
	}
	if want := "GET /pay: slower"; len(rows[0]["changed"]) < len(want) || rows[0]["changed"][:len(want)] != want {
		t.Errorf("2.4.0's changed routes shown as %q", rows[0]["changed"])
	}

	route := url.Values{"service": {"payments"}, "environment": {"development"}, "method": {"GET"}, "route": {"/pay"}, "window": {"5m"}}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+route.Encode()), chromedp.WaitVisible(`#compare-table tr`), chromedp.WaitVisible(`#latency-chart svg`))
	compared := eval[[]string](t, ctx, `[...document.querySelectorAll("#compare-table tr")].map(tr => tr.dataset.version + " " + tr.querySelector(".requests").textContent)`)
	if fmt.Sprint(compared) != "[2.4.0 40 2.3.0 40]" {
		t.Errorf("comparison rows %v", compared)
	}
	markers := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll("#latency-chart g.marker")].map(g => [g.dataset.version, g.dataset.at]))`)
	for _, v := range api.Versions {
		if markers[v.Version] == "" {
			t.Errorf("no marker for %s on the latency chart: %v", v.Version, markers)
			continue
		}
		got, _ := time.Parse(time.RFC3339Nano, markers[v.Version])
		want, _ := time.Parse(time.RFC3339Nano, v.FirstSeen)
		if !got.Equal(want) {
			t.Errorf("marker of %s at %s, first seen %s", v.Version, markers[v.Version], v.FirstSeen)
		}
	}
}
