package slo

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// RatioWindows are the windows every objective's error ratio is recorded over (the compliance window besides):
// the alerts' long and short windows, the SRE workbook's.
var RatioWindows = []time.Duration{5 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour, 6 * time.Hour, 24 * time.Hour, 72 * time.Hour}

// The series the rules read, as the Prometheus exporter names slo.events and its attributes, and the labels the
// ratios keep: each route its own objective.
const (
	eventsSeries = "slo_events_total"
	routeLabels  = "service_name, deployment_environment_name, http_request_method, http_route"
)

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording or an alerting rule.
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Sloth's names (github.com/slok/sloth): dashboards made for Sloth read these rules. Its labels: sloth_id,
// sloth_service, sloth_slo, sloth_window; its alerts' sloth_severity.
const (
	recordErrorRatio      = "slo:sli_error:ratio_rate"
	recordObjective       = "slo:objective:ratio"
	recordErrorBudget     = "slo:error_budget:ratio"
	recordTimePeriodDays  = "slo:time_period:days"
	recordCurrentBurnRate = "slo:current_burn_rate:ratio"
	recordPeriodBurnRate  = "slo:period_burn_rate:ratio"
	recordBudgetRemaining = "slo:period_error_budget_remaining:ratio"
	// AlertName is every burn-rate alert's name; severity, slo and the route tell them apart.
	AlertName = "SLOErrorBudgetBurn"
)

// PromDuration writes d as PromQL does: 30d, 6h, 5m.
func PromDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// Rules returns the rule file of the objectives (validated, defaults filled in): per objective, its error ratio
// per route over each window (sums of counts divided: a busy hour weighs as much as it served), Sloth's meta
// rules, and the burn-rate alerts by severity.
func Rules(objectives []Objective) RuleFile {
	var f RuleFile
	for _, o := range objectives {
		f.Groups = append(f.Groups, recordings(o), meta(o), alerts(o))
	}
	return f
}

func slothLabels(o Objective) map[string]string {
	service := o.Service
	if service == "" {
		service = "*"
	}
	return map[string]string{"sloth_id": o.Name, "sloth_slo": o.Name, "sloth_service": service}
}

func with(labels map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for lk, lv := range labels {
		out[lk] = lv
	}
	return out
}

func windows(o Objective) []time.Duration {
	out := append([]time.Duration(nil), RatioWindows...)
	for _, a := range o.Alerts {
		for _, w := range []time.Duration{a.Short, a.Long} {
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	if !slices.Contains(out, o.Window) {
		out = append(out, o.Window)
	}
	return out
}

// rate is the objective's request rate per route over w, of one outcome or all ("").
func rate(o Objective, outcome string, w time.Duration) string {
	selector := fmt.Sprintf(`slo_name=%q`, o.Name)
	if outcome != "" {
		selector += fmt.Sprintf(`, outcome=%q`, outcome)
	}
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[%s]))", routeLabels, eventsSeries, selector, PromDuration(w))
}

func recordings(o Objective) RuleGroup {
	g := RuleGroup{Name: "sloth-slo-sli-recordings-" + o.Name}
	for _, w := range windows(o) {
		g.Rules = append(g.Rules, Rule{
			Record: recordErrorRatio + PromDuration(w),
			Expr:   rate(o, "bad", w) + "\n/\n" + rate(o, "", w),
			Labels: with(slothLabels(o), "sloth_window", PromDuration(w)),
		})
	}
	return g
}

func meta(o Objective) RuleGroup {
	labels := slothLabels(o)
	id := fmt.Sprintf(`{sloth_id=%q}`, o.Name)
	perRoute := "on (sloth_id) group_left"
	return RuleGroup{Name: "sloth-slo-meta-recordings-" + o.Name, Rules: []Rule{
		{Record: recordObjective, Expr: fmt.Sprintf("vector(%v)", o.TargetRatio()), Labels: labels},
		{Record: recordErrorBudget, Expr: fmt.Sprintf("vector(%v)", o.ErrorBudget()), Labels: labels},
		{Record: recordTimePeriodDays, Expr: fmt.Sprintf("vector(%v)", o.Window.Hours()/24), Labels: labels},
		{Record: recordCurrentBurnRate, Expr: fmt.Sprintf("%s5m%s\n/ %s\n%s%s", recordErrorRatio, id, perRoute, recordErrorBudget, id), Labels: labels},
		{Record: recordPeriodBurnRate, Expr: fmt.Sprintf("%s%s%s\n/ %s\n%s%s", recordErrorRatio, PromDuration(o.Window), id, perRoute, recordErrorBudget, id), Labels: labels},
		{Record: recordBudgetRemaining, Expr: fmt.Sprintf("1 - %s%s", recordPeriodBurnRate, id), Labels: labels},
	}}
}

func alerts(o Objective) RuleGroup {
	g := RuleGroup{Name: "sloth-slo-alerts-" + o.Name}
	for _, severity := range []string{"page", "ticket"} {
		var pairs []string
		for _, a := range o.Alerts {
			if a.Severity != severity {
				continue
			}
			bound := fmt.Sprintf("%.6g * %.6g", a.Factor(o.Window), o.ErrorBudget())
			over := func(w time.Duration) string {
				return fmt.Sprintf("max without (sloth_window) (%s%s{sloth_id=%q} > (%s))", recordErrorRatio, PromDuration(w), o.Name, bound)
			}
			pair := fmt.Sprintf("(\n  %s\n  and\n  %s", over(a.Short), over(a.Long))
			// Quiet while the short window sees too few requests to judge. Not the long one: rate divides by the whole
			// range, so a route younger than 3 days would read as quiet traffic for hours.
			if o.MinRequestsPerHour > 0 {
				pair += fmt.Sprintf("\n  and on (%s)\n  %s * 3600 >= %v", routeLabels, rate(o, "", a.Short), o.MinRequestsPerHour)
			}
			pairs = append(pairs, pair+"\n)")
		}
		if len(pairs) == 0 {
			continue
		}
		g.Rules = append(g.Rules, Rule{
			Alert:  AlertName,
			Expr:   strings.Join(pairs, "\nor\n"),
			Labels: map[string]string{"sloth_severity": severity, "severity": severity, "slo": o.Name},
			Annotations: map[string]string{
				"summary":     fmt.Sprintf("%s: %s {{ $labels.http_request_method }} {{ $labels.http_route }} is burning its error budget (%v %% target over %s)", severity, o.Name, o.Target, PromDuration(o.Window)),
				"description": fmt.Sprintf("Service {{ $labels.service_name }} ({{ $labels.deployment_environment_name }}): the error ratio over both windows of a %s burn-rate alert exceeds its factor times the budget (%.6g).", severity, o.ErrorBudget()),
			},
		})
	}
	return g
}

// YAML writes the rule file, with a first line saying where it comes from.
func (f RuleFile) YAML(source string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Generated by `make slo-rules` from %s: do not edit.\n", source)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}
