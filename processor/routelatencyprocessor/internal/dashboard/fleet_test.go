package dashboard

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Three replicas each see a third of a route's requests (different shapes per replica, as a load balancer by trace
// id gives them); the fleet view of any one of them must count all requests and give percentiles within 1 % of the
// exact ones over all requests, and name a peer that does not answer.
func TestFleetMergesPeersSketchesExactly(t *testing.T) {
	key := RouteKey{"shop", "production", "GET", "/items/{item_id}"}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []float64
	var servers []*httptest.Server
	var replicas []*Server
	for r := 0; r < 3; r++ {
		h := NewHistory([]Tier{{Slice: 30 * time.Second, Keep: time.Hour}}, 10)
		var lat []float64
		for i := 0; i < 20000; i++ {
			v := math.Exp(rng.NormFloat64()*0.6 - 4 + float64(r)*0.7) // replica r is slower: no average of p99s is right
			lat = append(lat, v)
		}
		all = append(all, lat...)
		h.Record(key, Interval{Sketch: sketchOf(t, lat...), Errors: uint64(10 * (r + 1)), StatusCode: 200}, t0)
		s := NewServer(h, Options{BearerToken: "tok", Instance: "replica-" + string(rune('a'+r))})
		s.now = func() time.Time { return t0.Add(time.Minute) }
		replicas = append(replicas, s)
		servers = append(servers, httptest.NewServer(s.Handler()))
		t.Cleanup(servers[r].Close)
	}
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close() // a peer that does not answer
	var addrs []string
	for _, srv := range servers {
		addrs = append(addrs, strings.TrimPrefix(srv.URL, "http://"))
	}
	deadAddr := strings.TrimPrefix(down.URL, "http://")
	// Replica a lists every replica, itself included (as a headless Service's DNS would), and a dead one.
	replicas[0].opts.Peers = NewPeers(append(slices.Clone(addrs), deadAddr), "", "tok")

	req := httptest.NewRequest(http.MethodGet, "/api/routes?window=5m&scope=fleet", nil)
	req.Header.Set("Authorization", "Bearer tok")
	rec := httptest.NewRecorder()
	replicas[0].Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body struct {
		Scope  string       `json:"scope"`
		Routes []RouteJSON  `json:"routes"`
		Peers  []PeerStatus `json:"peers"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	require.Len(t, body.Routes, 1)
	got := body.Routes[0]
	assert.Equal(t, uint64(60000), got.Requests, "every replica's requests, this one counted once")
	assert.Equal(t, uint64(60), got.Errors)
	slices.Sort(all)
	for _, q := range []struct {
		name  string
		q, ms float64
	}{{"p50", 0.50, got.P50Ms}, {"p95", 0.95, got.P95Ms}, {"p99", 0.99, got.P99Ms}} {
		exact := all[int(math.Ceil(q.q*float64(len(all))))-1] * 1000
		assert.InEpsilon(t, exact, q.ms, 0.01, "%s: fleet %.3f ms, exact %.3f ms", q.name, q.ms, exact)
	}
	states := map[string]string{}
	for _, p := range body.Peers {
		states[p.Address] = p.State
	}
	assert.Equal(t, "self", states[addrs[0]])
	assert.Equal(t, "ok", states[addrs[1]])
	assert.Equal(t, "ok", states[addrs[2]])
	assert.Equal(t, "missing", states[deadAddr], "a peer that does not answer is shown, not left out silently")

	// Without a fleet configured, scope=fleet is a clear error; the replica's own view stays.
	req = httptest.NewRequest(http.MethodGet, "/api/routes?window=5m&scope=fleet", nil)
	req.Header.Set("Authorization", "Bearer tok")
	rec = httptest.NewRecorder()
	replicas[1].Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "no peers configured")
}
