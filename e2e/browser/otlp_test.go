package browser

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"
)

// attrJSON is an OTLP/JSON string attribute.
func attrJSON(k, v string) map[string]any {
	return map[string]any{"key": k, "value": map[string]any{"stringValue": v}}
}

// serverSpanJSON is an OTLP/JSON server span of a declared route ending at end, with the given events; id names
// both its trace (32 hex digits) and its span (16); a 5xx gets the error status.
func serverSpanJSON(id int, idPrefix, method, route string, status int, d time.Duration, end time.Time, events ...any) map[string]any {
	s := map[string]any{
		"traceId": idPrefix + fmtHex(id, 32-len(idPrefix)), "spanId": fmtHex(id, 16), "name": method + " " + route, "kind": 2,
		"startTimeUnixNano": strconv.FormatInt(end.Add(-d).UnixNano(), 10), "endTimeUnixNano": strconv.FormatInt(end.UnixNano(), 10),
		"attributes": []any{attrJSON("http.request.method", method), attrJSON("http.route", route),
			map[string]any{"key": "http.response.status_code", "value": map[string]any{"intValue": strconv.Itoa(status)}}},
	}
	if len(events) > 0 {
		s["events"] = events
	}
	if status >= 500 {
		s["status"] = map[string]any{"code": 2}
	}
	return s
}

func fmtHex(n, width int) string {
	h := strconv.FormatInt(int64(n), 16)
	for len(h) < width {
		h = "0" + h
	}
	return h
}

// exportJSON is an OTLP/JSON export request of one resource (its attributes) and its spans.
func exportJSON(resource map[string]string, spans []any) []byte {
	keys := make([]string, 0, len(resource))
	for k := range resource {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]any, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, attrJSON(k, resource[k]))
	}
	body, _ := json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource":   map[string]any{"attributes": attrs},
		"scopeSpans": []any{map[string]any{"spans": spans}},
	}}})
	return body
}
