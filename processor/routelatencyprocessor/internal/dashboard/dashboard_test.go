package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func sketchOf(t *testing.T, seconds ...float64) *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, 2048)
	require.NoError(t, err)
	for _, v := range seconds {
		require.NoError(t, s.Add(v))
	}
	return s
}

// interval is a flushed interval of latencies (seconds) with a status code, errors, and its slowest as exemplar.
func interval(t *testing.T, status int64, errors uint64, seconds ...float64) Interval {
	iv := Interval{Sketch: sketchOf(t, seconds...), Errors: errors, StatusCode: status}
	slowest := 0.0
	for _, v := range seconds {
		iv.SumSeconds += v
		slowest = max(slowest, v)
	}
	iv.Exemplars = []Exemplar{{TraceID: strconv.FormatFloat(slowest, 'f', -1, 64), Seconds: slowest, At: t0}}
	return iv
}

type routeInfo struct{ guessed, undocumented map[string]bool }

func (r routeInfo) Guessed(_, route string) bool      { return r.guessed[route] }
func (r routeInfo) Undocumented(_, route string) bool { return r.undocumented[route] }

func get(t *testing.T, s *Server, target string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	if v != nil && rec.Code == http.StatusOK {
		require.NoError(t, json.NewDecoder(rec.Body).Decode(v), target)
	}
	return rec.Code
}

func TestHistoryMergesSlicesOverTheWindow(t *testing.T) {
	h := NewHistory([]Tier{{Slice: 30 * time.Second, Keep: time.Hour}}, 10)
	key := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	h.Record(key, interval(t, 200, 1, 0.010, 0.020), t0)
	h.Record(key, interval(t, 500, 0, 0.030), t0.Add(15*time.Second)) // same slice
	h.Record(key, interval(t, 200, 1, 1.0), t0.Add(10*time.Minute))

	windows, _ := h.Windows(time.Hour, t0.Add(10*time.Minute+time.Second))
	all := Summarize(windows, time.Hour)
	require.Len(t, all, 1)
	assert.Equal(t, uint64(4), all[0].Requests)
	assert.Equal(t, uint64(2), all[0].Errors)
	assert.InEpsilon(t, 1.0, all[0].Max, 0.01)
	assert.InDelta(t, 1.06, all[0].SumSeconds, 1e-9)

	recent, _ := h.Windows(time.Minute, t0.Add(10*time.Minute+time.Second))
	require.Len(t, recent, 1)
	assert.Equal(t, uint64(1), recent[0].Requests, "only the last slice is in a 1m window")

	d := h.Query(func(k RouteKey) bool { return k == key }, time.Hour, t0.Add(10*time.Minute+time.Second))
	require.Len(t, d.Points, 2)
	assert.Equal(t, uint64(3), d.Points[0].Requests)
	assert.Equal(t, StatusClasses{0, 0, 2, 0, 0, 1}, d.Points[0].Classes)
	assert.InEpsilon(t, 0.020, d.Points[0].P50, 0.01)
	require.Len(t, d.Slowest, 3)
	assert.Equal(t, 1.0, d.Slowest[0].Seconds, "slowest first")
}

func TestHistoryRingOverwritesOldSlicesAndCapsRoutes(t *testing.T) {
	h := NewHistory([]Tier{{Slice: time.Minute, Keep: 5 * time.Minute}}, 2)
	key := RouteKey{"shop", "", "GET", "/a"}
	h.Record(key, interval(t, 200, 0, 0.1), t0)
	h.Record(key, interval(t, 200, 0, 0.2), t0.Add(5*time.Minute)) // same ring position, five slices later
	assert.Len(t, h.Query(func(RouteKey) bool { return true }, time.Hour, t0.Add(5*time.Minute+time.Second)).Points, 1)

	h.Record(RouteKey{"shop", "", "GET", "/b"}, interval(t, 200, 0, 0.1), t0)
	h.Record(RouteKey{"shop", "", "GET", "/c"}, interval(t, 200, 0, 0.1), t0)
	windows, _ := h.Windows(time.Hour, t0.Add(5*time.Minute+time.Second))
	assert.Len(t, windows, 2)
	assert.Equal(t, uint64(1), h.dropped)

	// Once /b's only slice has left the history, a new route takes its place.
	h.Record(RouteKey{"shop", "", "GET", "/d"}, interval(t, 200, 0, 0.1), t0.Add(6*time.Minute))
	assert.Equal(t, uint64(1), h.dropped)
	_, kept := h.routes[RouteKey{"shop", "", "GET", "/d"}]
	assert.True(t, kept)
	_, kept = h.routes[RouteKey{"shop", "", "GET", "/b"}]
	assert.False(t, kept)
}

// shopHistory: /items over 10 slices (1..1000 ms in the last), /checkout, a guessed one-hit route, {unmatched}.
func shopHistory(t *testing.T) (*Server, time.Time) {
	h := NewHistory([]Tier{{Slice: 30 * time.Second, Keep: time.Hour}}, 20)
	items := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	now := t0.Add(10 * time.Minute)
	for i := range 20 { // 10 minutes of slices: the previous 5m window is covered
		h.Record(items, interval(t, 200, 0, 0.005, 0.006), t0.Add(time.Duration(i)*30*time.Second))
	}
	var lat []float64
	for i := 1; i <= 1000; i++ {
		lat = append(lat, float64(i)/1000) // 1 ms .. 1 s
	}
	h.Record(items, interval(t, 200, 0, lat...), now.Add(-10*time.Second))
	h.Record(items, interval(t, 500, 10, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5), now.Add(-10*time.Second))
	h.Record(RouteKey{"shop", "development", "POST", "/checkout"}, interval(t, 200, 0, 2.0, 2.0), now.Add(-10*time.Second))
	h.Record(RouteKey{"shop", "development", "GET", "/wp-{id}.php"}, interval(t, 404, 0, 0.001), now.Add(-10*time.Second))
	busy := make([]float64, 5000)
	for i := range busy {
		busy[i] = 0.0001
	}
	h.Record(RouteKey{"shop", "development", "GET", "{unmatched}"}, interval(t, 404, 0, busy...), now.Add(-10*time.Second))
	s := NewServer(h, Options{JaegerUI: "http://127.0.0.1:16686/", Routes: routeInfo{
		guessed: map[string]bool{"/wp-{id}.php": true}, undocumented: map[string]bool{"/checkout": true}},
		FlushInterval: 15 * time.Second})
	s.now = func() time.Time { return now }
	return s, now
}

func TestAPIRoutes(t *testing.T) {
	s, now := shopHistory(t)
	var body struct {
		Routes         []RouteJSON `json:"routes"`
		Slices         []time.Time `json:"slices"`
		Updated        time.Time   `json:"updated"`
		FlushSeconds   float64     `json:"flush_seconds"`
		CoveredSeconds float64     `json:"covered_seconds"`
	}
	require.Equal(t, http.StatusOK, get(t, s, "/api/routes?window=5m&service=shop", &body))
	require.Len(t, body.Routes, 4)
	order := []string{}
	for _, r := range body.Routes {
		order = append(order, r.Route)
	}
	// Declared routes by impact (share of the service's request time), then the junk, busiest first.
	assert.Equal(t, []string{"/items/{item_id}", "/checkout", "{unmatched}", "/wp-{id}.php"}, order)
	items, checkout, unmatched, guessed := body.Routes[0], body.Routes[1], body.Routes[2], body.Routes[3]
	assert.False(t, items.Junk)
	assert.True(t, unmatched.Junk && unmatched.CatchAll)
	assert.True(t, guessed.Junk && guessed.Guessed, "a guessed route with one hit is junk")
	assert.True(t, checkout.Undocumented)

	// Impact: /items 500.5 + 5 + 0.11 s (10 slices of 2), /checkout 4 s, {unmatched} 0.5 s, the guessed one 0.001 s.
	total := items.Impact + checkout.Impact + unmatched.Impact + guessed.Impact
	assert.InDelta(t, 1.0, total, 1e-9)
	assert.InDelta(t, 4.0/(505.5+0.11+4+0.5+0.001), checkout.Impact, 1e-3)

	assert.Equal(t, uint64(1000+10+20), items.Requests)
	assert.InEpsilon(t, 990, items.P99Ms, 0.01)
	require.NotNil(t, items.PrevRequests, "the history covers the previous 5 minutes")
	assert.Equal(t, uint64(20), *items.PrevRequests)
	require.NotNil(t, items.PrevP99Ms)
	assert.InEpsilon(t, 6, *items.PrevP99Ms, 0.01)

	// Sparklines: one value per slice of the window, aligned with the response's slices.
	require.Len(t, items.SparkRequests, len(body.Slices))
	require.Len(t, body.Slices, 10) // 5 minutes of 30 s slices, from now - 5m rounded down, to now
	last := len(body.Slices) - 1
	require.NotNil(t, items.SparkRequests[last])
	assert.Equal(t, uint64(1010+2), *items.SparkRequests[last]) // and the last of the 5 ms pairs
	assert.InEpsilon(t, 990, *items.SparkP99Ms[last], 0.01)

	// The Jaeger search: the route, at or above its p99 in microseconds, over the window shown.
	u, err := url.Parse(items.JaegerURL)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:16686/search", u.Scheme+"://"+u.Host+u.Path)
	assert.JSONEq(t, `{"http.route":"/items/{item_id}"}`, u.Query().Get("tags"))
	assert.Equal(t, strconv.FormatInt(int64(math.Floor(items.P99Ms*1000)), 10)+"us", u.Query().Get("minDuration"))
	assert.Equal(t, "custom", u.Query().Get("lookback"))
	assert.Equal(t, strconv.FormatInt(now.Add(-5*time.Minute).UnixMicro(), 10), u.Query().Get("start"))
	assert.Equal(t, strconv.FormatInt(now.UnixMicro(), 10), u.Query().Get("end"))

	assert.Equal(t, now.Add(-10*time.Second), body.Updated)
	assert.Equal(t, 15.0, body.FlushSeconds)

	assert.Equal(t, http.StatusBadRequest, get(t, s, "/api/routes?window=2h", nil))
}

func TestAPISeriesOfARouteAndOfAService(t *testing.T) {
	s, _ := shopHistory(t)
	var body struct {
		Points  []PointJSON `json:"points"`
		Summary struct {
			Requests uint64            `json:"requests"`
			P99Ms    float64           `json:"p99_ms"`
			Status   map[string]uint64 `json:"status"`
		} `json:"summary"`
		Distribution []BucketJSON `json:"distribution"`
		Slowest      []SlowJSON   `json:"slowest"`
		Previous     *struct {
			Requests uint64 `json:"requests"`
		} `json:"previous"`
		JaegerURL string `json:"jaeger_url"`
	}
	require.Equal(t, http.StatusOK, get(t, s, "/api/series?window=5m&service=shop&environment=development&method=GET&route=/items/{item_id}", &body))
	assert.Equal(t, uint64(1030), body.Summary.Requests)
	assert.Equal(t, map[string]uint64{"1xx": 0, "2xx": 1020, "3xx": 0, "4xx": 0, "5xx": 10, "other": 0}, body.Summary.Status)
	var inDistribution uint64
	for i, b := range body.Distribution {
		inDistribution += b.Count
		assert.InEpsilon(t, math.Pow(10, 0.1), b.UpperMs/b.LowerMs, 1e-9, "ten buckets per decade")
		if i > 0 {
			assert.InEpsilon(t, body.Distribution[i-1].UpperMs, b.LowerMs, 1e-9, "contiguous")
		}
	}
	assert.Equal(t, body.Summary.Requests, inDistribution, "every request is in the distribution once")
	require.NotEmpty(t, body.Slowest)
	assert.Equal(t, "1", body.Slowest[0].TraceID, "the slowest exemplar first (1 s)")
	assert.Equal(t, "http://127.0.0.1:16686/trace/1", body.Slowest[0].JaegerURL)
	require.NotNil(t, body.Previous)
	assert.Equal(t, uint64(20), body.Previous.Requests)
	assert.NotEmpty(t, body.JaegerURL)
	var perSlice uint64
	for _, p := range body.Points {
		perSlice += p.Requests
	}
	assert.Equal(t, body.Summary.Requests, perSlice)

	// The service: every route merged.
	body.JaegerURL = ""
	require.Equal(t, http.StatusOK, get(t, s, "/api/series?window=5m&service=shop", &body))
	assert.Equal(t, uint64(1030+2+1+5000), body.Summary.Requests)
	assert.Empty(t, body.JaegerURL)
	// Merging the service's routes left each route's own slices as they were.
	require.Equal(t, http.StatusOK, get(t, s, "/api/series?window=5m&service=shop&environment=development&method=GET&route=/items/{item_id}", &body))
	assert.Equal(t, uint64(1030), body.Summary.Requests)
	assert.InEpsilon(t, 990, body.Summary.P99Ms, 0.01)

	assert.Equal(t, http.StatusBadRequest, get(t, s, "/api/series?window=5m", nil))
	assert.Equal(t, http.StatusBadRequest, get(t, s, "/api/series?window=5m&service=shop&route=/x", nil))
}

func TestPagesAndScriptAreServed(t *testing.T) {
	s, _ := shopHistory(t)
	for path, want := range map[string]string{"/": "initOverview()", "/route?service=shop&method=GET&route=/x": "initRoute()", "/dashboard.js": "function timeChart", "/dashboard.css": "svg.chart"} {
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, http.StatusOK, rec.Code, path)
		assert.Contains(t, rec.Body.String(), want, path)
		assert.NotContains(t, rec.Body.String(), "https://", "%s loads nothing from elsewhere", path)
	}
}

func TestBearerToken(t *testing.T) {
	s := NewServer(NewHistory([]Tier{{Slice: time.Minute, Keep: time.Hour}}, 1), Options{BearerToken: "s3cret"})
	assert.Equal(t, http.StatusUnauthorized, get(t, s, "/api/routes", nil))
	req := httptest.NewRequest(http.MethodGet, "/api/routes", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
}

// A window longer than the history divides by the time the history covers: 433 requests over 45 s of a collector's
// life are ~577 per minute in the 1 h view, not 7.2.
func TestRatesCoverOnlyTheTimeRecorded(t *testing.T) {
	h := NewHistory([]Tier{{Slice: 30 * time.Second, Keep: time.Hour}}, 10)
	key := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	start := t0.Truncate(30 * time.Second)
	lat := make([]float64, 0, 433)
	for range 200 {
		lat = append(lat, 0.01)
	}
	h.Record(key, interval(t, 200, 0, lat...), start.Add(15*time.Second))
	lat = lat[:0]
	for range 233 {
		lat = append(lat, 0.01)
	}
	h.Record(key, interval(t, 200, 0, lat...), start.Add(45*time.Second))
	windows, covered := h.Windows(time.Hour, start.Add(45*time.Second))
	sums := Summarize(windows, covered)
	require.Len(t, sums, 1)
	assert.InDelta(t, 433/0.75, sums[0].RequestsPerMinute, 1e-9)
	// A 1 m window is still longer than the 45 s covered.
	windows, covered = h.Windows(time.Minute, start.Add(45*time.Second))
	assert.InDelta(t, 433/0.75, Summarize(windows, covered)[0].RequestsPerMinute, 1e-9)
}
