package slo

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Datadog is what the Datadog API takes to build the objectives on the delta slo.events the gateway sends there:
// metric-based SLOs (POST /api/v1/slo) and their burn-rate monitors (POST /api/v1/monitor, type "slo alert").
// A monitor names its SLO by the id Datadog gives it on creation: its query holds SLOIDPlaceholder(name), to be
// replaced by that id.
type Datadog struct {
	ServiceLevelObjectives []map[string]any `json:"service_level_objectives"`
	Monitors               []map[string]any `json:"monitors"`
}

// SLOIDPlaceholder stands for the id of the SLO of an objective in its monitors' queries.
func SLOIDPlaceholder(name string) string { return "SLO_ID(" + name + ")" }

// datadogTimeframes are the SLO timeframes Datadog's API accepts besides custom ones.
var datadogTimeframes = map[float64]string{7: "7d", 30: "30d", 90: "90d"}

// DatadogDefinitions returns the objectives' Datadog definitions (validated, defaults filled in). An objective
// whose window is not 7, 30 or 90 days gets no SLO there (Datadog computes no other timeframe): it is listed in
// skipped.
func DatadogDefinitions(objectives []Objective) (d Datadog, skipped []string) {
	d.ServiceLevelObjectives, d.Monitors = []map[string]any{}, []map[string]any{}
	for _, o := range objectives {
		timeframe, ok := datadogTimeframes[o.Window.Hours()/24]
		if !ok {
			skipped = append(skipped, o.Name)
			continue
		}
		filter := datadogFilter(o)
		tags := []string{"slo:" + o.Name, "generated-by:otelcol-apm"}
		d.ServiceLevelObjectives = append(d.ServiceLevelObjectives, map[string]any{
			"name":        o.Name,
			"type":        "metric",
			"description": describe(o),
			"query": map[string]any{
				"numerator":   fmt.Sprintf("sum:%s{%s,outcome:good}.as_count()", MetricEvents, filter),
				"denominator": fmt.Sprintf("sum:%s{%s}.as_count()", MetricEvents, filter),
			},
			"thresholds": []map[string]any{{"timeframe": timeframe, "target": o.Target}},
			"tags":       tags,
		})
		for _, a := range o.Alerts {
			factor := a.Factor(o.Window)
			d.Monitors = append(d.Monitors, map[string]any{
				"name": fmt.Sprintf("%s: %s burning its error budget (%s/%s at %.4g)", a.Severity, o.Name, PromDuration(a.Long), PromDuration(a.Short), factor),
				"type": "slo alert",
				"query": fmt.Sprintf(`burn_rate("%s").over("%s").long_window("%s").short_window("%s") > %.4g`,
					SLOIDPlaceholder(o.Name), timeframe, PromDuration(a.Long), PromDuration(a.Short), factor),
				"message": fmt.Sprintf("%s is burning its error budget: %.4g times the rate that spends it over %s. Severity: %s.", o.Name, factor, timeframe, a.Severity),
				"tags":    append(append([]string{}, tags...), "severity:"+a.Severity),
				"options": map[string]any{"thresholds": map[string]any{"critical": factor}},
			})
		}
	}
	return d, skipped
}

// datadogFilter selects the objective's counts: its name (the gateway counted only the matching routes).
func datadogFilter(o Objective) string { return "slo.name:" + o.Name }

func describe(o Objective) string {
	what := "requests that did not fail (no span status error, no 5xx"
	if len(o.BadStatusCodes) > 0 {
		codes := make([]string, len(o.BadStatusCodes))
		for i, c := range o.BadStatusCodes {
			codes[i] = fmt.Sprint(c)
		}
		what += ", none of " + strings.Join(codes, ", ")
	}
	what += ")"
	if o.Indicator == Latency {
		what = fmt.Sprintf("requests that did not fail and took at most %s", o.Threshold)
	}
	return fmt.Sprintf("%v %% of %s; counted by otelcol-apm from every span before sampling.", o.Target, what)
}

// JSON writes the definitions, indented.
func (d Datadog) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	return append(b, '\n'), err
}
