package harness

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// ShopAPI is a running instance of examples/shopapi, exporting to a collector.
type ShopAPI struct {
	*Process
	Addr string
}

// StartShopAPI runs the example service (SHOPAPI_BIN) as service in environment, exporting OTLP/gRPC to col the
// way an SDK is configured from its environment (TLS and the bearer token when col is hardened), with extra
// environment (e.g. DOWNSTREAM_URL).
func StartShopAPI(t testing.TB, service, environment string, col *Collector, extra ...string) *ShopAPI {
	t.Helper()
	bin := os.Getenv("SHOPAPI_BIN")
	if bin == "" {
		t.Fatal("SHOPAPI_BIN is not set: run the suites through make (make e2e), which builds the example service")
	}
	s := &ShopAPI{Addr: Addr(t)}
	env := []string{
		"LISTEN_ADDR=" + s.Addr,
		"OTEL_SERVICE_NAME=" + service,
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=" + environment,
		"OTEL_TRACES_SAMPLER=always_on",
		"SLOW_DELAY=600ms",
	}
	if col.Creds == nil {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+col.OTLPGRPC, "OTEL_EXPORTER_OTLP_INSECURE=true")
	} else {
		env = append(env, "OTEL_EXPORTER_OTLP_ENDPOINT=https://"+col.OTLPGRPC,
			"OTEL_EXPORTER_OTLP_CERTIFICATE="+col.Creds.CertFile,
			"OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20"+col.Creds.Token)
	}
	s.Process = Start(t, service, bin, nil, append(env, extra...)...)
	WaitStatus(t, s.Process, "http://"+s.Addr+"/items/0", http.StatusOK, 20*time.Second)
	return s
}

// WaitStatus polls url until it answers with want.
func WaitStatus(t testing.TB, p *Process, url string, want int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("%s to answer %s with %d", p.Name, url, want), func() (bool, string) {
		resp, err := http.Get(url)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == want, resp.Status
	})
}

// Mix is the fixed request mix the suites drive: per route, how many requests and what each answers.
type Mix struct {
	Items, Orders, Checkouts, Slow, Missing int
}

// StandardMix is what each scenario sends to one instance.
var StandardMix = Mix{Items: 20, Orders: 10, Checkouts: 5, Slow: 3, Missing: 7}

// Total is the number of requests, hence server spans, of the mix.
func (m Mix) Total() int { return m.Items + m.Orders + m.Checkouts + m.Slow + m.Missing }

// Drive sends the mix to the service with a few workers and checks each status code. The warm-up request that
// StartShopAPI made is one more /items request: the returned counts include it.
func (s *ShopAPI) Drive(t testing.TB, m Mix) map[string]int {
	t.Helper()
	type req struct {
		method, path string
		want         int
	}
	var reqs []req
	for i := range m.Items {
		reqs = append(reqs, req{"GET", fmt.Sprintf("/items/%d", 1000+i*37), 200})
	}
	for i := range m.Orders {
		reqs = append(reqs, req{"GET", fmt.Sprintf("/users/%d/orders", 7+i), 200})
	}
	for range m.Checkouts {
		reqs = append(reqs, req{"POST", "/checkout", 500})
	}
	for range m.Slow {
		reqs = append(reqs, req{"GET", "/reports/slow", 200})
	}
	for i := range m.Missing {
		reqs = append(reqs, req{"GET", fmt.Sprintf("/missing/%d", 88120+i), 404})
	}
	work := make(chan req)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range work {
				hr, _ := http.NewRequest(r.method, "http://"+s.Addr+r.path, strings.NewReader(""))
				resp, err := http.DefaultClient.Do(hr)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != r.want {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %s: %v %v", r.method, r.path, err, resp))
					mu.Unlock()
				}
			}
		}()
	}
	for _, r := range reqs {
		work <- r
	}
	close(work)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("requests to %s failed: %v", s.Name, failures)
	}
	return map[string]int{
		"GET /items/{item_id}":        m.Items + 1,
		"GET /users/{user_id}/orders": m.Orders,
		"POST /checkout":              m.Checkouts,
		"GET /reports/slow":           m.Slow,
		"GET {unmatched}":             m.Missing, // 404s without a route, from a service that declares its routes
	}
}
