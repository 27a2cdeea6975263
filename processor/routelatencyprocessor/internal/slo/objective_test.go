package slo

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func latency300() Objective {
	return Objective{Name: "orders-latency", Target: 99.9, Indicator: Latency, Threshold: 300 * time.Millisecond}.WithDefaults()
}

// 299, 300 and 301 ms, 1.2 s and a 50 ms 500 against 300 ms: good 2 (a request at the threshold meets it), bad 3.
func TestLatencyIndicatorCountsByHand(t *testing.T) {
	o := latency300()
	var good, bad int
	for _, r := range []struct {
		nanos  int64
		status int64
	}{{299e6, 200}, {300e6, 200}, {301e6, 200}, {1200e6, 200}, {50e6, 500}} {
		if o.Good(r.nanos, r.status, r.status >= 500) {
			good++
		} else {
			bad++
		}
	}
	assert.Equal(t, 2, good)
	assert.Equal(t, 3, bad)
}

func TestAvailabilityCountsChosen4xxAsBad(t *testing.T) {
	o := Objective{Name: "a", Target: 99, Indicator: Availability, BadStatusCodes: []int{429}}
	assert.True(t, o.Good(5e9, 404, false), "a 404 is the client's")
	assert.False(t, o.Good(1e6, 429, false), "429 is listed")
	assert.False(t, o.Good(1e6, 200, true), "a span status error fails the request")
}

// 99.9 % of 2,592,000 requests (a month at one a second) allows 2,592 bad; 1,296 bad leave half the budget.
func TestErrorBudgetByHand(t *testing.T) {
	o := latency300()
	assert.InDelta(t, 2592, o.Allowed(2_592_000), 1e-6)
	assert.InDelta(t, 0.5, o.BudgetLeft(2_592_000, 1296), 1e-9)
	assert.InDelta(t, 1.0, o.BurnRate(1000, 1), 1e-9, "0.1 % bad spends a 99.9 % budget at rate 1")
}

func TestBurnRateFactorsFollowTheWindow(t *testing.T) {
	factors := func(window time.Duration) []float64 {
		var out []float64
		for _, a := range DefaultAlerts {
			out = append(out, a.Factor(window))
		}
		return out
	}
	assert.InDeltaSlice(t, []float64{14.4, 6, 3, 1}, factors(30*24*time.Hour), 1e-9)
	assert.InDeltaSlice(t, []float64{13.44, 5.6, 2.8, 2.8 / 3}, factors(28*24*time.Hour), 1e-9)
}

func TestValidateNamesEachYAMLPath(t *testing.T) {
	for name, c := range map[string]struct {
		objective Objective
		want      string
	}{
		"a 90 % target cannot page at 14.4": {Objective{Name: "x", Target: 90, Indicator: Availability},
			"slos[0].alerts (the defaults): a burn rate of 14.4 can never fire for a 90% target"},
		"a fraction for a percentage":    {Objective{Name: "x", Target: 0.999, Indicator: Availability}, "slos[0].target: 0.999 reads as a fraction"},
		"100 %":                          {Objective{Name: "x", Target: 100, Indicator: Availability}, "slos[0].target: must be a percentage above 0 and below 100"},
		"no threshold":                   {Objective{Name: "x", Target: 99, Indicator: Latency}, "slos[0].threshold: the latency indicator needs a positive threshold"},
		"negative threshold":             {Objective{Name: "x", Target: 99, Indicator: Latency, Threshold: -time.Second}, "slos[0].threshold"},
		"an unknown indicator":           {Objective{Name: "x", Target: 99, Indicator: "speed"}, `slos[0].indicator: must be "availability" or "latency"`},
		"a name Prometheus cannot carry": {Objective{Name: "Orders Latency", Target: 99, Indicator: Availability}, "slos[0].name"},
		"a window of days and a half":    {Objective{Name: "x", Target: 99, Indicator: Availability, Window: 36*time.Hour + time.Minute}, "slos[0].window"},
		"a custom alert that cannot fire": {Objective{Name: "x", Target: 99, Indicator: Availability, Alerts: []Alert{{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, BudgetShare: 0.5}}},
			"slos[0].alerts[0]: a burn rate of 360 can never fire"},
	} {
		t.Run(name, func(t *testing.T) {
			err := Validate("slos", []Objective{c.objective})
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	assert.NoError(t, Validate("slos", []Objective{latency300(), {Name: "checkout-availability", Target: 99.5, Indicator: Availability, Route: "/checkout*"}}))
	assert.ErrorContains(t, Validate("slos", []Objective{latency300(), latency300()}), `slos[1].name: "orders-latency" is used twice`)
}

func TestPatternsMatchWithStarsOnly(t *testing.T) {
	o := Objective{Service: "shop*", Route: "/orders/*", Method: "GET"}
	assert.True(t, o.Matches("shop-api", "production", "GET", "/orders/{order_id}"))
	assert.True(t, o.Matches("shop", "", "GET", "/orders/{order_id}/items"), "* spans slashes")
	assert.False(t, o.Matches("shop", "", "POST", "/orders/{order_id}"))
	assert.False(t, o.Matches("myshop", "", "GET", "/orders/1"))
	assert.True(t, matches("a*b*c", "abc"))
	assert.False(t, matches("a*b*c", "acb"))
	assert.False(t, matches("ab*ba", "aba"), "the prefix and the suffix may not share characters")
}
