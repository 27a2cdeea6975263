package dashboard

import (
	"math"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shippedTiers are the connector's defaults: 30 s for an hour, 10 min for a day, 1 h for a week.
var shippedTiers = []Tier{{30 * time.Second, time.Hour}, {10 * time.Minute, 24 * time.Hour}, {time.Hour, 7 * 24 * time.Hour}}

type sent struct {
	at     time.Time
	values []float64
}

// exactQuantile is the value at rank q x (n - 1), the rank the sketches estimate.
func exactQuantile(values []float64, q float64) float64 {
	v := slices.Clone(values)
	slices.Sort(v)
	return v[int(math.Floor(q*float64(len(v)-1)))]
}

// Ten hours of 15-second intervals of lognormal latencies: every window from 1 minute to 7 days answers from its
// tier with the counts of the intervals in its slices (windows are whole slices of their tier: from the slice that
// holds its start to the one that holds its end) and quantiles within 1 % of the exact ones over those intervals.
func TestRollupsCountExactlyAndQuantilesWithinOnePercent(t *testing.T) {
	h := NewHistory(shippedTiers, 10)
	key := RouteKey{"shop", "production", "GET", "/items/{item_id}"}
	rng := rand.New(rand.NewPCG(1, 2))
	var all []sent
	start := t0.Add(-10 * time.Hour)
	for at := start; at.Before(t0); at = at.Add(15 * time.Second) {
		s := sent{at: at}
		for range 20 {
			s.values = append(s.values, 0.05*math.Exp(rng.NormFloat64()))
		}
		h.Record(key, interval(t, 200, 0, s.values...), at)
		all = append(all, s)
	}
	end := t0.Add(-7*time.Minute - 10*time.Second) // not on a slice boundary of any tier
	for _, c := range []struct {
		window, slice, keep time.Duration
	}{{time.Minute, 30 * time.Second, time.Hour}, {time.Hour, 30 * time.Second, time.Hour}, {6 * time.Hour, 10 * time.Minute, 24 * time.Hour},
		{24 * time.Hour, 10 * time.Minute, 24 * time.Hour}, {7 * 24 * time.Hour, time.Hour, 7 * 24 * time.Hour}} {
		require.Equal(t, c.slice, h.SliceFor(c.window), "%s", c.window)
		// The window's slices that the tier's ring still holds: the last one recorded and the keep/slice - 1
		// before it.
		oldestHeld := all[len(all)-1].at.Truncate(c.slice).Add(-c.keep + c.slice)
		from := end.Add(-c.window).Truncate(c.slice)
		if from.Before(oldestHeld) {
			from = oldestHeld
		}
		var values []float64
		for _, s := range all {
			if start := s.at.Truncate(c.slice); !start.Before(from) && start.Before(end) { // its slice is in the window
				values = append(values, s.values...)
			}
		}
		d := h.QueryRoute(key, c.window, end)
		assert.Equal(t, uint64(len(values)), d.Window.Requests, "window %s: requests", c.window)
		sum := 0.0
		for _, p := range d.Points {
			sum += float64(p.Requests)
		}
		assert.Equal(t, float64(len(values)), sum, "window %s: the points add up to the window", c.window)
		for _, q := range []float64{0.5, 0.95, 0.99} {
			got, err := d.Window.Sketch.GetValueAtQuantile(q)
			require.NoError(t, err)
			want := exactQuantile(values, q)
			assert.InEpsilon(t, want, got, 0.01, "window %s: p%v %v, exact %v", c.window, q*100, got, want)
		}
		assert.LessOrEqual(t, len(d.Points), 168, "window %s: at most a week of hours", c.window)
	}
}

// perSliceBound is what one slice may hold at most: a full sketch (1024 bins of 8 bytes) and five exemplars, with
// the structures around them.
const perSliceBound = 8<<10 + 1<<10

// With the route cap full and every slice of every tier holding a sketch of 300 distinct bins (latencies over
// three orders of magnitude), the heap stays under the bound the README states: max_routes x slices x
// perSliceBound.
func TestHistoryMemoryWithinItsBound(t *testing.T) {
	const routes = 100
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := NewHistory(shippedTiers, routes)
	values := make([]float64, 300)
	for i := range values {
		values[i] = 0.001 * math.Pow(1.0202, float64(i)) // one 1 % bin each, 1 ms to about 400 ms
	}
	iv := interval(t, 200, 0, values...)
	slicesHeld := 0
	for _, tr := range shippedTiers {
		slicesHeld += int(tr.Keep / tr.Slice)
	}
	for r := range routes {
		key := RouteKey{"shop", "production", "GET", "/r" + string(rune('a'+r%26)) + string(rune('a'+r/26))}
		// One record per slice of each tier, coarsest first, so that every ring fills.
		for i := range 7 * 24 {
			h.Record(key, iv, t0.Add(-time.Duration(i)*time.Hour))
		}
		for i := range 24 * 6 {
			h.Record(key, iv, t0.Add(-time.Duration(i)*10*time.Minute))
		}
		for i := range 120 {
			h.Record(key, iv, t0.Add(-time.Duration(i)*30*time.Second))
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int(after.HeapAlloc) - int(before.HeapAlloc)
	bound := routes * slicesHeld * perSliceBound
	t.Logf("%d routes x %d slices: %.1f MiB held, bound %.1f MiB (%.0f bytes a slice)", routes, slicesHeld,
		float64(held)/(1<<20), float64(bound)/(1<<20), float64(held)/float64(routes*slicesHeld))
	assert.Less(t, held, bound)
	runtime.KeepAlive(h)
}

// The heatmap: each slice's requests per distribution bucket, adding up to the slice's requests, and per bucket
// to the window's distribution.
func TestHeatmapCountsEachSliceByTheDistributionsBuckets(t *testing.T) {
	s, _ := shopHistory(t)
	var body struct {
		Points []struct {
			Requests uint64
			Heatmap  []uint64
		}
		Distribution []struct{ Count uint64 }
	}
	require.Equal(t, http.StatusOK, get(t, s, "/api/series?service=shop&method=GET&route=/items/{item_id}&window=1h", &body))
	require.NotEmpty(t, body.Points)
	perBucket := make([]uint64, len(body.Distribution))
	for _, p := range body.Points {
		require.Len(t, p.Heatmap, len(body.Distribution))
		sum := uint64(0)
		for i, n := range p.Heatmap {
			sum += n
			perBucket[i] += n
		}
		assert.Equal(t, p.Requests, sum)
	}
	for i, b := range body.Distribution {
		assert.Equal(t, b.Count, perBucket[i], "bucket %d", i)
	}
}
