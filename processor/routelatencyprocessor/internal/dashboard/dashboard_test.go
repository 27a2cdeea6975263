package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
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

func TestHistoryMergesSlicesOverTheWindow(t *testing.T) {
	h := NewHistory(30*time.Second, time.Hour, 10)
	key := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	h.Record(key, sketchOf(t, 0.010, 0.020), 1, t0)
	h.Record(key, sketchOf(t, 0.030), 0, t0.Add(15*time.Second)) // same slice
	h.Record(key, sketchOf(t, 1.0), 1, t0.Add(10*time.Minute))

	all := h.Summaries(time.Hour, t0.Add(10*time.Minute))
	require.Len(t, all, 1)
	assert.Equal(t, uint64(4), all[0].Requests)
	assert.Equal(t, uint64(2), all[0].Errors)
	assert.InEpsilon(t, 1.0, all[0].Max, 0.01)

	recent := h.Summaries(time.Minute, t0.Add(10*time.Minute))
	require.Len(t, recent, 1)
	assert.Equal(t, uint64(1), recent[0].Requests, "only the last slice is in a 1m window")

	points := h.Series(key, time.Hour, t0.Add(10*time.Minute))
	require.Len(t, points, 2)
	assert.Equal(t, uint64(3), points[0].Requests)
	assert.InEpsilon(t, 0.020, points[0].P50, 0.01)
}

func TestHistoryRingOverwritesOldSlicesAndCapsRoutes(t *testing.T) {
	h := NewHistory(time.Minute, 5*time.Minute, 2)
	key := RouteKey{"shop", "", "GET", "/a"}
	h.Record(key, sketchOf(t, 0.1), 0, t0)
	h.Record(key, sketchOf(t, 0.2), 0, t0.Add(5*time.Minute)) // same ring position, five slices later
	assert.Len(t, h.Series(key, time.Hour, t0.Add(5*time.Minute)), 1)

	h.Record(RouteKey{"shop", "", "GET", "/b"}, sketchOf(t, 0.1), 0, t0)
	h.Record(RouteKey{"shop", "", "GET", "/c"}, sketchOf(t, 0.1), 0, t0)
	assert.Len(t, h.Summaries(time.Hour, t0.Add(5*time.Minute)), 2)
	assert.Equal(t, uint64(1), h.dropped)
}

func TestAPIAndJaegerLink(t *testing.T) {
	h := NewHistory(30*time.Second, time.Hour, 10)
	key := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	var lat []float64
	for i := 1; i <= 1000; i++ {
		lat = append(lat, float64(i)/1000) // 1 ms .. 1 s
	}
	h.Record(key, sketchOf(t, lat...), 10, t0)
	h.Record(RouteKey{"shop", "development", "GET", "/undocumented"}, sketchOf(t, 0.001), 0, t0)
	s := NewServer(h, "http://127.0.0.1:16686/", "", func(_, route string) bool { return route == "/undocumented" }, "replica-a", nil)
	s.now = func() time.Time { return t0.Add(time.Second) }

	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/routes?window=5m", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var body struct {
		Routes []RouteJSON `json:"routes"`
	}
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&body))
	require.Len(t, body.Routes, 2)
	r := body.Routes[0]
	if r.Route != key.Route {
		r, body.Routes[1] = body.Routes[1], r
	}
	assert.False(t, r.Undocumented)
	assert.True(t, body.Routes[1].Undocumented, "a route outside the service's OpenAPI documents says so")
	assert.Equal(t, uint64(1000), r.Requests)
	assert.InDelta(t, 0.01, r.ErrorRate, 1e-9)
	assert.InEpsilon(t, 990, r.P99Ms, 0.01) // lower quantile of 1..1000 ms at 0.99
	assert.InDelta(t, 1000/0.5, r.RequestsPerMinute, 1e-9, "the history covers one 30 s slice, not the 5 minutes asked for")

	u, err := url.Parse(r.JaegerURL)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:16686/search", u.Scheme+"://"+u.Host+u.Path)
	assert.Equal(t, "shop", u.Query().Get("service"))
	assert.JSONEq(t, `{"http.route":"/items/{item_id}"}`, u.Query().Get("tags"))
	assert.Equal(t, fmt.Sprintf("%dms", int64(math.Floor(r.P99Ms))), u.Query().Get("minDuration"))

	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/routes?window=2h", nil))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), "window")

	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/route?service=shop&environment=development&method=GET&route=/items/{item_id}", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, 3, strings.Count(rec.Body.String(), "<polyline"))
}

func TestBearerToken(t *testing.T) {
	s := NewServer(NewHistory(time.Minute, time.Hour, 1), "", "s3cret", nil, "replica-a", nil)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/routes", nil))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	req := httptest.NewRequest(http.MethodGet, "/api/routes", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
}

// A window longer than the history divides by the time the history covers: 433 requests over 45 s of a collector's
// life are ~577 per minute in the 1 h view, not 7.2.
func TestRatesCoverOnlyTheTimeRecorded(t *testing.T) {
	h := NewHistory(30*time.Second, time.Hour, 10)
	key := RouteKey{"shop", "development", "GET", "/items/{item_id}"}
	start := t0.Truncate(30 * time.Second)
	lat := make([]float64, 0, 433)
	for range 200 {
		lat = append(lat, 0.01)
	}
	h.Record(key, sketchOf(t, lat...), 0, start.Add(15*time.Second))
	lat = lat[:0]
	for range 233 {
		lat = append(lat, 0.01)
	}
	h.Record(key, sketchOf(t, lat...), 0, start.Add(45*time.Second))
	sums := h.Summaries(time.Hour, start.Add(45*time.Second))
	require.Len(t, sums, 1)
	assert.InDelta(t, 433/0.75, sums[0].RequestsPerMinute, 1e-9)
	// A 1 m window is still longer than the 45 s covered.
	sums = h.Summaries(time.Minute, start.Add(45*time.Second))
	assert.InDelta(t, 433/0.75, sums[0].RequestsPerMinute, 1e-9)
}

// A scanner's {unmatched} route, however busy, sits after the real routes, and says what it is.
func TestCatchAllRoutesComeLast(t *testing.T) {
	h := NewHistory(30*time.Second, time.Hour, 10)
	busy := make([]float64, 500)
	for i := range busy {
		busy[i] = 0.001
	}
	h.Record(RouteKey{"shop", "production", "GET", "{unmatched}"}, sketchOf(t, busy...), 0, t0)
	h.Record(RouteKey{"shop", "production", "GET", "/items/{item_id}"}, sketchOf(t, 0.01, 0.02), 0, t0)
	s := NewServer(h, "", "", nil, "replica-a", nil)
	s.now = func() time.Time { return t0.Add(time.Second) }
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/routes?window=5m", nil))
	var body struct {
		Routes []RouteJSON `json:"routes"`
	}
	require.NoError(t, json.NewDecoder(rec.Body).Decode(&body))
	require.Len(t, body.Routes, 2)
	assert.Equal(t, "/items/{item_id}", body.Routes[0].Route)
	assert.False(t, body.Routes[0].CatchAll)
	assert.Equal(t, "{unmatched}", body.Routes[1].Route)
	assert.True(t, body.Routes[1].CatchAll)
}
