package dashboard

import (
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"
)

// sloWindows are the burn-rate windows the page shows: the alerts' short and long ones.
var sloWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

// SLO states, from the burn rates the history covers.
const (
	stateOK         = "ok"
	stateIncreasing = "increasing" // burning faster than the budget allows, and faster now than over the hour
	stateRecovering = "recovering" // burnt too fast over the hour, slower now
	stateCritical   = "critical"   // a page alert's two windows both burn above its factor
	stateTooFew     = "too few requests"
)

type burnJSON struct {
	Window string   `json:"window"`
	Rate   *float64 `json:"rate"` // nil beyond the history the page holds
}

// sloJSON is one route under one objective. Compliance and budget are over the history the page holds
// (covered_seconds), not the objective's window, which the page cannot hold: Prometheus' rules (slo-rules) have it.
type sloJSON struct {
	Name              string     `json:"name"`
	Indicator         string     `json:"indicator"`
	Target            float64    `json:"target"`
	ThresholdMs       *float64   `json:"threshold_ms,omitempty"`
	Window            string     `json:"window"`
	Service           string     `json:"service"`
	Environment       string     `json:"environment"`
	Method            string     `json:"method"`
	Route             string     `json:"route"`
	Good              uint64     `json:"good"`
	Bad               uint64     `json:"bad"`
	Compliance        *float64   `json:"compliance"`
	BudgetLeft        float64    `json:"budget_left"`
	Burn              []burnJSON `json:"burn"`
	State             string     `json:"state"`
	ExhaustionSeconds *float64   `json:"exhaustion_seconds"` // at the last hour's burn; nil when not burning
	RequestsPerHour   float64    `json:"requests_per_hour"`
	TooFew            bool       `json:"too_few"`
}

// apiSLOs serves every route's objectives (filtered by service, environment, method and route when given).
func (s *Server) apiSLOs(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	history := s.history.Span()
	s.history.mu.Lock()
	covered := s.history.covered(history, now)
	// The traffic rate is over the last hour as the finest slices hold it: a coarse tier's slice would stretch a
	// young gateway's minutes to an hour.
	lastHour := s.history.covered(time.Hour, now)
	s.history.mu.Unlock()
	q := r.URL.Query()
	byWindow := map[time.Duration]map[sloKey]slo.Outcome{}
	for _, win := range sloWindows {
		if win <= history {
			byWindow[win] = s.history.sloOutcomes(win, now)
		}
	}
	all := s.history.sloOutcomes(history, now)
	out := []sloJSON{}
	for k, total := range all {
		if !matchesQuery(q.Get("service"), k.Service) || !matchesQuery(q.Get("environment"), k.Environment) ||
			!matchesQuery(q.Get("method"), k.Method) || !matchesQuery(q.Get("route"), k.Route) {
			continue
		}
		o, ok := s.objective(k.objective)
		if !ok {
			continue
		}
		out = append(out, sloView(o, k, total, lastHour, byWindow))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Service+a.Environment+a.Route+a.Method < b.Service+b.Environment+b.Route+b.Method
	})
	writeJSON(w, map[string]any{"covered_seconds": covered.Seconds(), "history_seconds": history.Seconds(), "objectives": out})
}

func matchesQuery(want, got string) bool { return want == "" || want == got }

func (s *Server) objective(name string) (slo.Objective, bool) {
	for _, o := range s.opts.Objectives {
		if o.Name == name {
			return o, true
		}
	}
	return slo.Objective{}, false
}

func sloView(o slo.Objective, k sloKey, total slo.Outcome, lastHour time.Duration, byWindow map[time.Duration]map[sloKey]slo.Outcome) sloJSON {
	v := sloJSON{Name: o.Name, Indicator: o.Indicator, Target: o.Target, Window: slo.PromDuration(o.Window),
		Service: k.Service, Environment: k.Environment, Method: k.Method, Route: k.Route, Good: total.Good, Bad: total.Bad}
	if o.Indicator == slo.Latency {
		ms := float64(o.Threshold) / 1e6
		v.ThresholdMs = &ms
	}
	n := float64(total.Good + total.Bad)
	if n > 0 {
		c := float64(total.Good) / n
		v.Compliance = &c
	}
	v.BudgetLeft = o.BudgetLeft(n, float64(total.Bad))
	burn := map[time.Duration]float64{}
	for _, win := range sloWindows {
		b := burnJSON{Window: slo.PromDuration(win)}
		if counts, ok := byWindow[win]; ok {
			c := counts[k]
			r := o.BurnRate(float64(c.Good+c.Bad), float64(c.Bad))
			burn[win], b.Rate = r, &r
		}
		v.Burn = append(v.Burn, b)
	}
	if lastHour > 0 {
		c := byWindow[time.Hour][k]
		v.RequestsPerHour = float64(c.Good+c.Bad) * float64(time.Hour) / float64(lastHour)
	}
	v.TooFew = v.RequestsPerHour < o.MinRequestsPerHour
	v.State = state(o, burn, v.TooFew)
	if hour := burn[time.Hour]; hour > 0 {
		left := math.Max(v.BudgetLeft, 0) * o.Window.Seconds() / hour
		v.ExhaustionSeconds = &left
	}
	return v
}

// state reads the burn rates the history covers: critical when a page alert's two windows both exceed its factor,
// increasing when the budget burns too fast and faster over 5 minutes than over the hour, recovering when the
// hour burnt too fast and the last 5 minutes slower.
func state(o slo.Objective, burn map[time.Duration]float64, tooFew bool) string {
	if tooFew {
		return stateTooFew
	}
	for _, a := range o.Alerts {
		short, okShort := burn[a.Short]
		long, okLong := burn[a.Long]
		if a.Severity == "page" && okShort && okLong && short > a.Factor(o.Window) && long > a.Factor(o.Window) {
			return stateCritical
		}
	}
	now, hour := burn[5*time.Minute], burn[time.Hour]
	switch {
	case now > 1 && now >= hour:
		return stateIncreasing
	case hour > 1 && now < hour:
		return stateRecovering
	}
	return stateOK
}
