package browser

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// errorsJSON: 12 failed checkouts, 8 declined for a customer whose email the message carries and 4 timed out,
// and 6 item reads that handled a cache miss.
func errorsJSON() []byte {
	end := time.Now()
	exception := func(typ, msg string) any {
		return map[string]any{"name": "exception", "timeUnixNano": strconv.FormatInt(end.UnixNano(), 10), "attributes": []any{
			attrJSON("exception.type", typ), attrJSON("exception.message", msg),
			attrJSON("exception.stacktrace", "Traceback (most recent call last):\n  File \"/app/shop/checkout.py\", line 9, in pay\n"+typ+": "+msg)}}
	}
	var spans []any
	for i := range 12 {
		ex := exception("PaymentDeclined", fmt.Sprintf("card %d declined for bob@example.com", 4000+i))
		if i%3 == 2 {
			ex = exception("GatewayTimeout", fmt.Sprintf("no answer after %d s", 5+i))
		}
		spans = append(spans, serverSpanJSON(i+1, "0f", "POST", "/checkout", 500, 20*time.Millisecond, end, ex))
	}
	for i := range 6 {
		spans = append(spans, serverSpanJSON(101+i, "0f", "GET", "/items/{item_id}", 200, 20*time.Millisecond, end,
			exception("CacheMiss", fmt.Sprintf("item %d not cached", i))))
	}
	return exportJSON(map[string]string{"service.name": "shop", "deployment.environment.name": "development"}, spans)
}

// TestErrorsInChromium: the overview's errors section and the route page's list the API's groups in its order
// with its counts; stack traces open behind a toggle; the masked email appears nowhere on either page.
func TestErrorsInChromium(t *testing.T) {
	otlpHTTP, dash := startCollector(t)
	resp, err := http.Post("http://"+otlpHTTP+"/v1/traces", "application/json", bytes.NewReader(errorsJSON()))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP/HTTP export: %v %v", err, resp)
	}
	resp.Body.Close()
	type apiGroup struct {
		Fingerprint, Type, Method, Route string
		Count, Failed, Handled           int
	}
	var api struct{ Groups []apiGroup }
	waitFor(t, 30*time.Second, "three groups in /api/errors", func() bool {
		getJSON(t, "http://"+dash+"/api/errors?service=shop&environment=development", &api)
		return len(api.Groups) == 3
	})
	want := map[string][3]int{"PaymentDeclined": {8, 8, 0}, "GatewayTimeout": {4, 4, 0}, "CacheMiss": {6, 0, 6}}
	for _, g := range api.Groups {
		if w := want[g.Type]; [3]int{g.Count, g.Failed, g.Handled} != w {
			t.Errorf("API %s: %+v, sent %v", g.Type, g, w)
		}
	}
	ctx, cancel := browser(t, 1400)
	defer cancel()
	rowsJS := `[...document.querySelectorAll("#errors-table tr[data-fingerprint]")].map(tr => ({fp: tr.dataset.fingerprint,
	  type: tr.querySelector(".type").textContent, count: tr.querySelector(".count").textContent, failed: tr.querySelector(".failed").textContent,
	  handled: tr.querySelector(".handled").textContent, shown: String(tr.offsetHeight > 0)}))`
	check := func(page string, groups []apiGroup) {
		rows := eval[[]map[string]string](t, ctx, rowsJS)
		if len(rows) != len(groups) {
			t.Fatalf("%s: %d error rows, API %d: %v", page, len(rows), len(groups), rows)
		}
		for i, g := range groups {
			r := rows[i]
			if r["fp"] != g.Fingerprint || r["type"] != g.Type || r["count"] != strconv.Itoa(g.Count) || r["failed"] != strconv.Itoa(g.Failed) ||
				r["handled"] != strconv.Itoa(g.Handled) || r["shown"] != "true" {
				t.Errorf("%s row %d: %v, API %+v", page, i, r, g)
			}
		}
		text := eval[string](t, ctx, `document.body.innerText + [...document.querySelectorAll("pre")].map(p => p.textContent).join("")`)
		if strings.Contains(text, "bob@example.com") || !strings.Contains(text, "<masked>") {
			t.Errorf("%s: the email is not masked on the page", page)
		}
	}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/?service=shop&environment=development&window=5m"), chromedp.WaitVisible(`#errors-table tr`))
	check("overview", api.Groups)

	var route struct{ Groups []apiGroup }
	getJSON(t, "http://"+dash+"/api/errors?service=shop&environment=development&method=POST&route=/checkout", &route)
	q := url.Values{"service": {"shop"}, "environment": {"development"}, "method": {"POST"}, "route": {"/checkout"}, "window": {"5m"}}
	do(t, ctx, chromedp.Navigate("http://"+dash+"/route?"+q.Encode()), chromedp.WaitVisible(`#errors-table tr`))
	check("route page", route.Groups)
	do(t, ctx, chromedp.Click(`#errors-table tr.stack summary`))
	if stack := eval[string](t, ctx, `document.querySelector("#errors-table tr.stack details[open] pre").textContent`); !strings.Contains(stack, "checkout.py") {
		t.Errorf("the opened stack trace: %q", stack)
	}
}
