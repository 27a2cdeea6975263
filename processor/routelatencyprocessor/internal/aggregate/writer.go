package aggregate

import (
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// writer lays series out as one ResourceMetrics per (service, environment) with the four route metrics each.
type writer struct {
	md          pmetric.Metrics
	cfg         *Config
	temporality pmetric.AggregationTemporality
	now         pcommon.Timestamp
	resources   map[[2]string]*resourceMetrics
}

type resourceMetrics struct {
	requests, errors, duration, quantiles, requestDuration pmetric.Metric
}

func newWriter(md pmetric.Metrics, cfg *Config, now pcommon.Timestamp) *writer {
	t := pmetric.AggregationTemporalityCumulative
	if cfg.Delta {
		t = pmetric.AggregationTemporalityDelta
	}
	return &writer{md: md, cfg: cfg, temporality: t, now: now, resources: map[[2]string]*resourceMetrics{}}
}

func (w *writer) resource(series *Series) *resourceMetrics {
	key := [2]string{series.Attrs.Service, series.Attrs.Environment}
	if rm, ok := w.resources[key]; ok {
		return rm
	}
	out := w.md.ResourceMetrics().AppendEmpty()
	attrs := out.Resource().Attributes()
	if !series.isOverflow {
		attrs.PutStr(AttrService, series.Attrs.Service)
		if series.Attrs.Environment != "" {
			attrs.PutStr(AttrEnvironment, series.Attrs.Environment)
		}
	}
	sm := out.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(w.cfg.ScopeName)
	ms := sm.Metrics()

	names := &w.cfg.Metrics
	rm := &resourceMetrics{requests: ms.AppendEmpty()}
	type sumMetric struct {
		metric pmetric.Metric
		m      Metric
	}
	sums := []sumMetric{{rm.requests, names.Requests}}
	if names.Errors.Name != "" {
		rm.errors = ms.AppendEmpty()
		sums = append(sums, sumMetric{rm.errors, names.Errors})
	}
	for _, m := range sums {
		m.metric.SetName(m.m.Name)
		m.metric.SetUnit("{request}")
		m.metric.SetDescription(m.m.Description)
		sum := m.metric.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(w.temporality)
	}
	rm.duration = ms.AppendEmpty()
	w.initHistogram(rm.duration, names.Duration.Name, names.Duration.Description)
	if len(w.cfg.Quantiles) > 0 {
		rm.quantiles = ms.AppendEmpty()
		rm.quantiles.SetName(names.Quantiles.Name)
		rm.quantiles.SetUnit("s")
		rm.quantiles.SetDescription(names.Quantiles.Description)
		rm.quantiles.SetEmptySummary()
	}
	if w.cfg.RequestDuration {
		rm.requestDuration = ms.AppendEmpty()
		w.initHistogram(rm.requestDuration, MetricRequestDuration, "Duration of HTTP server requests, from server spans.")
	}
	w.resources[key] = rm
	return rm
}

func (w *writer) write(series *Series) {
	rm := w.resource(series)
	start := series.start

	requests := rm.requests.Sum().DataPoints().AppendEmpty()
	w.stamp(requests.Attributes(), series, start, requests.SetStartTimestamp, requests.SetTimestamp)
	requests.SetIntValue(int64(series.Requests))

	if w.cfg.Metrics.Errors.Name != "" {
		errs := rm.errors.Sum().DataPoints().AppendEmpty()
		w.stamp(errs.Attributes(), series, start, errs.SetStartTimestamp, errs.SetTimestamp)
		errs.SetIntValue(int64(series.Errors))
	}

	w.writeHistogram(rm.duration, series, start, false)
	if w.cfg.RequestDuration {
		w.writeHistogram(rm.requestDuration, series, start, true)
	}

	if len(w.cfg.Quantiles) == 0 {
		return
	}
	dp := rm.quantiles.Summary().DataPoints().AppendEmpty()
	w.stamp(dp.Attributes(), series, start, dp.SetStartTimestamp, dp.SetTimestamp)
	dp.SetCount(series.Requests)
	dp.SetSum(series.SumSeconds)
	// An interval without requests has no quantiles: NaN, as a Prometheus summary reports for an empty window.
	// Leaving the point out instead would let an exporter's cache show the last busy interval's values for a
	// route that has stopped.
	values, err := series.Sketch.GetValuesAtQuantiles(w.cfg.Quantiles)
	for i, q := range w.cfg.Quantiles {
		qv := dp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q)
		if err != nil {
			qv.SetValue(math.NaN())
		} else {
			qv.SetValue(values[i])
		}
	}
}

// initHistogram names m and makes it the configured kind of histogram, in seconds.
func (w *writer) initHistogram(m pmetric.Metric, name, description string) {
	m.SetName(name)
	m.SetUnit("s")
	m.SetDescription(description)
	if w.cfg.ExponentialMaxSize > 0 {
		m.SetEmptyExponentialHistogram().SetAggregationTemporality(w.temporality)
	} else {
		m.SetEmptyHistogram().SetAggregationTemporality(w.temporality)
	}
}

// writeHistogram appends the series' histogram, with its exemplars, to m; semconv adds error.type.
func (w *writer) writeHistogram(m pmetric.Metric, series *Series, start pcommon.Timestamp, semconv bool) {
	exemplars := series.histogram.writeTo(m, series.SumSeconds)
	var attrs pcommon.Map
	if w.cfg.ExponentialMaxSize > 0 {
		dp := m.ExponentialHistogram().DataPoints().At(m.ExponentialHistogram().DataPoints().Len() - 1)
		w.stamp(dp.Attributes(), series, start, dp.SetStartTimestamp, dp.SetTimestamp)
		attrs = dp.Attributes()
	} else {
		dp := m.Histogram().DataPoints().At(m.Histogram().DataPoints().Len() - 1)
		w.stamp(dp.Attributes(), series, start, dp.SetStartTimestamp, dp.SetTimestamp)
		attrs = dp.Attributes()
	}
	if semconv && series.Attrs.StatusCode >= 500 {
		attrs.PutStr(AttrErrorType, strconv.Itoa(int(series.Attrs.StatusCode)))
	}
	for _, e := range series.exemplars {
		ex := exemplars.AppendEmpty()
		ex.SetTraceID(e.traceID)
		ex.SetSpanID(e.spanID)
		ex.SetDoubleValue(e.seconds)
		ex.SetTimestamp(e.at)
	}
}

func (w *writer) stamp(attrs pcommon.Map, series *Series, start pcommon.Timestamp, setStart, setTime func(pcommon.Timestamp)) {
	setStart(start)
	setTime(w.now)
	if w.cfg.CollectorInstanceID != "" {
		attrs.PutStr(AttrCollectorInstanceID, w.cfg.CollectorInstanceID)
	}
	if series.isOverflow {
		attrs.PutBool(AttrOverflow, true)
		return
	}
	a := series.Attrs
	// Service and environment are on the resource too, but many exporters (Prometheus's among them) keep only data
	// point attributes as labels: without them here, one service's staging and production series would collide.
	attrs.PutStr(AttrService, a.Service)
	if a.Environment != "" {
		attrs.PutStr(AttrEnvironment, a.Environment)
	}
	attrs.PutStr(AttrMethod, a.Method)
	attrs.PutStr(AttrRoute, a.Route)
	if a.StatusCode != 0 {
		if w.cfg.StatusClass {
			attrs.PutStr(AttrStatusClass, strconv.Itoa(int(a.StatusCode/100))+"xx")
		} else {
			attrs.PutInt(AttrStatusCode, a.StatusCode)
		}
	}
	for i, name := range w.cfg.DimensionNames {
		attrs.PutStr(name, a.Dimensions[i])
	}
}
