package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// Jaeger is a real Jaeger v2 process (in-memory storage) on fresh loopback ports.
type Jaeger struct {
	*Process
	OTLP, Query string
	env         []string
}

// StartJaeger runs the binary that `make` built from the pinned Jaeger module (JAEGER_BIN); env may point its
// metrics storage at a Prometheus (JAEGER_PROMETHEUS_URL).
func StartJaeger(t testing.TB, env ...string) *Jaeger {
	t.Helper()
	j := &Jaeger{OTLP: Addr(t), Query: Addr(t)}
	j.env = append([]string{
		"JAEGER_OTLP_GRPC_ENDPOINT=" + j.OTLP,
		"JAEGER_QUERY_ENDPOINT=" + j.Query,
		"JAEGER_QUERY_GRPC_ENDPOINT=" + Addr(t),
	}, env...)
	j.start(t)
	return j
}

func (j *Jaeger) start(t testing.TB) {
	t.Helper()
	bin := os.Getenv("JAEGER_BIN")
	if bin == "" {
		t.Fatal("JAEGER_BIN is not set: run the suites through make (make e2e), which builds Jaeger once")
	}
	j.Process = Start(t, "jaeger", bin, []string{"--config", ConfigPath("e2e/testdata/jaeger.yaml")}, j.env...)
	WaitHTTP(t, j.Process, "http://"+j.Query+"/api/services", 60*time.Second)
}

// Restart starts a new Jaeger on the same ports after Stop; its in-memory storage starts empty.
func (j *Jaeger) Restart(t testing.TB) { j.start(t) }

// JaegerSpan is a span as Jaeger's query API returns it.
type JaegerSpan struct {
	TraceID       string `json:"traceID"`
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	Duration      int64  `json:"duration"` // microseconds
	Tags          []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

// Tag returns a tag's value as text, "" when absent.
func (s JaegerSpan) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Spans returns every span Jaeger holds for service (server spans and others), through /api/traces.
func (j *Jaeger) Spans(service string) ([]JaegerSpan, error) {
	q := url.Values{"service": {service}, "limit": {"100000"}, "lookback": {"2h"}}
	resp, err := http.Get("http://" + j.Query + "/api/traces?" + q.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // Jaeger answers 404 for a service it has never seen
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger /api/traces: %s", resp.Status)
	}
	var body struct {
		Data []struct {
			Spans []JaegerSpan `json:"spans"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var spans []JaegerSpan
	for _, tr := range body.Data {
		spans = append(spans, tr.Spans...)
	}
	return spans, nil
}

// Services lists the services Jaeger has seen.
func (j *Jaeger) Services() ([]string, error) {
	resp, err := http.Get("http://" + j.Query + "/api/services")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Data []string `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&body)
	return body.Data, err
}
