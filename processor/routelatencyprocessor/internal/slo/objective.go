// Package slo counts each request against the service level objectives it matches (good or bad, exactly, from
// every span before sampling), and writes the alert rules and Datadog definitions those counts feed: multiwindow,
// multi-burn-rate alerts as in Google's SRE workbook, with ratios that are always sums of counts divided.
package slo // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/slo"

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Indicators.
const (
	// Availability: a request is bad when it failed (span status error or a 5xx), or answered one of BadStatusCodes.
	Availability = "availability"
	// Latency: a request is good when it did not fail and took at most Threshold.
	Latency = "latency"
)

// DefaultWindow is the compliance window unless an objective sets its own: 30 days.
const DefaultWindow = 30 * 24 * time.Hour

// Objective is one service level objective, as written in the connector's YAML under slos.
type Objective struct {
	// Name identifies the objective in metrics (slo.name), rules and alerts: lowercase letters, digits, '-' and '_'.
	Name string `mapstructure:"name"`
	// Service, Environment, Method and Route select the requests counted: exact values or patterns in which *
	// matches any run of characters, / included ("/api/*" is every route under /api/); empty matches all.
	Service     string `mapstructure:"service"`
	Environment string `mapstructure:"environment"`
	Method      string `mapstructure:"method"`
	Route       string `mapstructure:"route"`
	// Target is the percentage of good requests the objective promises, e.g. 99.9.
	Target float64 `mapstructure:"target"`
	// Indicator is availability or latency.
	Indicator string `mapstructure:"indicator"`
	// Threshold is the latency indicator's bound: a request that took longer is bad.
	Threshold time.Duration `mapstructure:"threshold"`
	// BadStatusCodes are 4xx answers the availability indicator counts as bad (e.g. 429); other 4xx are good (the
	// client's fault).
	BadStatusCodes []int `mapstructure:"bad_status_codes"`
	// Window is the compliance window (default 720h, 30 days), in whole hours.
	Window time.Duration `mapstructure:"window"`
	// MinRequestsPerHour keeps the burn-rate alerts quiet while the traffic over an alert's long window is below
	// it: a handful of requests cannot tell a burn from bad luck.
	MinRequestsPerHour float64 `mapstructure:"min_requests_per_hour"`
	// Alerts are the burn-rate alerts; empty takes DefaultAlerts.
	Alerts []Alert `mapstructure:"alerts"`
}

// Alert is one multiwindow burn-rate alert: it fires when the error ratio over both windows exceeds Factor times
// the error budget's ratio (1 - target). Factor follows from the share of the budget that burns in Long.
type Alert struct {
	// Severity is page or ticket.
	Severity string `mapstructure:"severity"`
	// Long and Short are the two windows (Short about a twelfth of Long: it makes the alert stop soon after the
	// burn does).
	Long  time.Duration `mapstructure:"long"`
	Short time.Duration `mapstructure:"short"`
	// BudgetShare is the share of the window's error budget that, burnt within Long, fires the alert
	// (e.g. 0.02: 2 % of a 30-day budget in an hour is a burn rate of 14.4).
	BudgetShare float64 `mapstructure:"budget_share"`
}

// DefaultAlerts are the SRE workbook's: page on 2 % of the budget in 1 h (5 m) and 5 % in 6 h (30 m), ticket on
// 10 % in 1 d (2 h) and 10 % in 3 d (6 h). Over 30 days their factors are 14.4, 6, 3 and 1.
var DefaultAlerts = []Alert{
	{Severity: "page", Long: time.Hour, Short: 5 * time.Minute, BudgetShare: 0.02},
	{Severity: "page", Long: 6 * time.Hour, Short: 30 * time.Minute, BudgetShare: 0.05},
	{Severity: "ticket", Long: 24 * time.Hour, Short: 2 * time.Hour, BudgetShare: 0.10},
	{Severity: "ticket", Long: 72 * time.Hour, Short: 6 * time.Hour, BudgetShare: 0.10},
}

// Factor is the burn rate at which the alert fires: the budget share burnt within Long, over the window.
func (a Alert) Factor(window time.Duration) float64 {
	return a.BudgetShare * float64(window) / float64(a.Long)
}

// TargetRatio is the target as a ratio (0.999 for 99.9), rounded to 12 digits so that it reads as written.
func (o *Objective) TargetRatio() float64 { return round12(o.Target / 100) }

// ErrorBudget is the ratio of bad requests the objective allows (1 - target).
func (o *Objective) ErrorBudget() float64 { return round12(1 - o.Target/100) }

func round12(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return r
}

// Allowed is how many of total requests may be bad within the objective.
func (o *Objective) Allowed(total float64) float64 { return total * o.ErrorBudget() }

// BudgetLeft is the share of the error budget that bad requests among total leave (negative once overspent; 1
// without requests).
func (o *Objective) BudgetLeft(total, bad float64) float64 {
	if total == 0 {
		return 1
	}
	return 1 - bad/o.Allowed(total)
}

// BurnRate is how fast bad requests among total spend the budget: 1 spends exactly the window's budget over the
// window (0 without requests).
func (o *Objective) BurnRate(total, bad float64) float64 {
	if total == 0 {
		return 0
	}
	return bad / total / o.ErrorBudget()
}

// WithDefaults returns the objective with its window and alerts filled in.
func (o Objective) WithDefaults() Objective {
	if o.Window == 0 {
		o.Window = DefaultWindow
	}
	if len(o.Alerts) == 0 {
		o.Alerts = DefaultAlerts
	}
	return o
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate checks the objectives as written (before WithDefaults); each error names its YAML path under prefix
// (e.g. "slos").
func Validate(prefix string, objectives []Objective) error {
	var errs []error
	seen := map[string]bool{}
	for i, written := range objectives {
		at := fmt.Sprintf("%s[%d]", prefix, i)
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
		}
		o := written.WithDefaults()
		switch {
		case !validName.MatchString(o.Name):
			bad("name", "must be lowercase letters, digits, '-' and '_' (it names metrics and alerts), got %q", o.Name)
		case seen[o.Name]:
			bad("name", "%q is used twice", o.Name)
		}
		seen[o.Name] = true
		switch {
		case o.Target > 0 && o.Target <= 1:
			bad("target", "%v reads as a fraction; the target is a percentage (write %v for %v%%)", o.Target, o.Target*100, o.Target*100)
		case !(o.Target > 0 && o.Target < 100):
			bad("target", "must be a percentage above 0 and below 100 (100 %% leaves no error budget to alert on), got %v", o.Target)
		}
		switch o.Indicator {
		case Latency:
			if o.Threshold <= 0 {
				bad("threshold", "the latency indicator needs a positive threshold, got %s", o.Threshold)
			}
		case Availability:
			if o.Threshold != 0 {
				bad("threshold", "only the latency indicator has a threshold")
			}
		default:
			bad("indicator", "must be %q or %q, got %q", Availability, Latency, o.Indicator)
		}
		for j, code := range o.BadStatusCodes {
			if code < 400 || code > 499 {
				bad(fmt.Sprintf("bad_status_codes[%d]", j), "lists 4xx codes (failures and 5xx are always bad), got %d", code)
			}
		}
		if o.Window < time.Hour || o.Window%time.Hour != 0 {
			bad("window", "must be whole hours, at least 1h (30 days is 720h), got %s", o.Window)
		}
		if o.MinRequestsPerHour < 0 {
			bad("min_requests_per_hour", "must not be negative, got %v", o.MinRequestsPerHour)
		}
		if !(o.Target > 1 && o.Target < 100) {
			continue // the factors' check needs a valid target
		}
		for j, a := range o.Alerts {
			field := fmt.Sprintf("alerts[%d]", j)
			if len(written.Alerts) == 0 {
				field = "alerts (the defaults)"
			}
			switch {
			case a.Severity != "page" && a.Severity != "ticket":
				bad(field+".severity", "must be page or ticket, got %q", a.Severity)
			case a.Short <= 0 || a.Long <= a.Short:
				bad(field, "needs 0 < short < long, got short %s and long %s", a.Short, a.Long)
			case a.Long > o.Window:
				bad(field+".long", "%s is longer than the window (%s)", a.Long, o.Window)
			case !(a.BudgetShare > 0 && a.BudgetShare <= 1):
				bad(field+".budget_share", "must be a share of the budget above 0 and at most 1, got %v", a.BudgetShare)
			case a.Factor(o.Window) > 1/o.ErrorBudget():
				bad(field, "a burn rate of %.4g can never fire for a %v%% target: the error ratio would have to exceed %.4g, above 1 (at most %.4g; lower budget_share or the long window's share of the window)",
					a.Factor(o.Window), o.Target, a.Factor(o.Window)*o.ErrorBudget(), 1/o.ErrorBudget())
			}
		}
	}
	return errors.Join(errs...)
}

// Matches reports whether the objective counts requests of this route.
func (o *Objective) Matches(service, environment, method, route string) bool {
	return matches(o.Service, service) && matches(o.Environment, environment) && matches(o.Method, method) && matches(o.Route, route)
}

// matches is a glob with * only: an empty pattern matches everything.
func matches(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return len(s) >= len(last) && strings.HasSuffix(s, last)
}

// Good reports whether one request of nanos nanoseconds meets the objective: failed is a span status error or a
// 5xx. Durations compare in whole nanoseconds, as the spans carry them: 300 ms meets a 300 ms threshold.
func (o *Objective) Good(nanos, statusCode int64, failed bool) bool {
	if failed {
		return false
	}
	switch o.Indicator {
	case Latency:
		return nanos <= int64(o.Threshold)
	default:
		return !slices.Contains(o.BadStatusCodes, int(statusCode))
	}
}
