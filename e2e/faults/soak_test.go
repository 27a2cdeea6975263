package faults

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// soakGauges are what the soak samples; each must stay flat once the gateway has warmed up. Routes and series
// rise by design until the first guessed routes age out (guessed_route_idle, 5m) and idle series expire
// (series_expiry and the Prometheus exporter's metric_expiration, 5m each): they are judged only when the run's
// last half starts after settle.
var soakGauges = []struct {
	name   string
	unit   string
	floor  float64 // growth over the last half below this is noise, whatever the mean
	settle time.Duration
}{
	{"rss", "MiB", 16, 0},
	{"goroutines", "", 10, 0},
	{"open_files", "", 5, 0},
	{"route_series", "", 20, 10 * time.Minute},      // otelcol_connector_routelatency_series (local connector)
	{"routes", "", 10, 10 * time.Minute},            // otelcol_processor_routelatency_routes
	{"prometheus_lines", "", 100, 10 * time.Minute}, // samples on the route metrics endpoint
	{"queue_spans", "", 5000, 0},                    // the export queue (the backend is up: it drains)
}

// TestSoak runs the hardened gateway for SOAK_DURATION (default 90s; `make soak`: 30m) under a steady 1,000 spans/s
// of realistic traffic with churn: a new guessed route every SOAK_CHURN (1m), a new service every 3 churns while an
// old one stops. It samples every SOAK_SAMPLE (10s) and fails if a gauge grows over the last half of the run by more
// than 10 % of its mean (or its noise floor). It writes the samples (CSV) and a chart (SVG) to SOAK_OUT if set.
func TestSoak(t *testing.T) {
	duration := envDuration("SOAK_DURATION", 90*time.Second)
	churn := envDuration("SOAK_CHURN", time.Minute)
	every := envDuration("SOAK_SAMPLE", 10*time.Second)
	sink := startSeqSink(t, 0)
	col := startGateway(t, sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- soakTraffic(ctx, col, churn) }()

	var samples [][]float64
	var at []time.Duration
	start := time.Now()
	tick := time.NewTicker(every)
	for time.Since(start) < duration {
		<-tick.C
		s, err := soakSample(col)
		if err != nil {
			t.Fatalf("sample at %s: %v", time.Since(start).Round(time.Second), err)
		}
		samples = append(samples, s)
		at = append(at, time.Since(start))
	}
	tick.Stop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	half := len(samples) / 2
	var verdicts []string
	for g, gauge := range soakGauges {
		var xs, ys []float64
		for i := half; i < len(samples); i++ {
			xs, ys = append(xs, at[i].Seconds()), append(ys, samples[i][g])
		}
		slope, mean := fit(xs, ys)
		growth := slope * (xs[len(xs)-1] - xs[0])
		allowed := math.Max(0.10*mean, gauge.floor)
		first, last := samples[0][g], samples[len(samples)-1][g]
		if judged := at[half] >= gauge.settle; !judged {
			verdicts = append(verdicts, fmt.Sprintf("%s %.0f→%.0f (not judged: run too short)", gauge.name, first, last))
			continue
		}
		verdicts = append(verdicts, fmt.Sprintf("%s %.0f→%.0f%s (last half: mean %.0f, growth %+.1f, allowed %.1f)", gauge.name, first, last, gauge.unit, mean, growth, allowed))
		if growth > allowed {
			t.Errorf("%s grows without bound: %+.1f%s over the last half of the run (mean %.1f, allowed %.1f)", gauge.name, growth, gauge.unit, mean, allowed)
		}
	}
	if healthy(col) != nil || col.Exited() {
		t.Error("the gateway is not healthy at the end of the soak")
	}
	figures(t, "soak", "%s at 1,000 spans/s, a new guessed route every %s, a new service every %s, %d samples: %s",
		duration, churn, 3*churn, len(samples), strings.Join(verdicts, "; "))
	if out := os.Getenv("SOAK_OUT"); out != "" {
		writeSoak(t, out, at, samples)
	}
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
}

// soakTraffic sends 10 requests of 100 spans per second: two long-lived services with declared routes, a churned
// service (one every 3 churns, the previous one stops) and raw paths that make a new guessed route every churn.
func soakTraffic(ctx context.Context, col *harness.Collector, churn time.Duration) error {
	conn, err := col.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		epoch := int(time.Since(start) / churn)
		td := ptrace.NewTraces()
		for _, svc := range []string{"checkout", "catalog", fmt.Sprintf("batch-%d", epoch/3)} {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", svc)
			rs.Resource().Attributes().PutStr("deployment.environment.name", "development")
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			for i := 0; i < 33; i++ {
				seq++
				s := spans.AppendEmpty()
				var tid pcommon.TraceID
				binary.BigEndian.PutUint64(tid[8:], seq)
				tid[0] = 's'
				s.SetTraceID(tid)
				s.SetSpanID(pcommon.SpanID(tid[8:]))
				s.SetKind(ptrace.SpanKindServer)
				end := time.Now()
				s.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(1+seq%200) * time.Millisecond)))
				s.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
				a := s.Attributes()
				a.PutStr("http.request.method", "GET")
				code := int64(200)
				switch {
				case i%3 == 0: // raw path only: a guessed route that changes every churn
					a.PutStr("url.path", fmt.Sprintf("/reports/r%d/%d", epoch, seq))
				case seq%40 == 0: // a scanner
					a.PutStr("url.path", fmt.Sprintf("/wp-admin/%x.php", seq))
					code = 404
				default:
					route := fmt.Sprintf("/items/{item_id}/v%d", i%5)
					a.PutStr("http.route", route)
					a.PutStr("url.path", strings.Replace(route, "{item_id}", strconv.FormatUint(seq, 10), 1))
				}
				a.PutInt("http.response.status_code", code)
				s.SetName("GET")
			}
		}
		callCtx, cancel := context.WithTimeout(col.OutgoingContext(ctx), 5*time.Second)
		_, _ = client.Export(callCtx, ptraceotlp.NewExportRequestFromTraces(td)) // refusals show in queue_spans
		cancel()
	}
}

func soakSample(col *harness.Collector) ([]float64, error) {
	rss, _ := memory(col.Pid())
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", col.Pid()))
	if err != nil {
		return nil, err
	}
	goroutines, err := harness.Get("http://" + col.Pprof + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return nil, err
	}
	var g float64
	if _, err := fmt.Sscanf(goroutines, "goroutine profile: total %g", &g); err != nil {
		return nil, fmt.Errorf("goroutine profile: %v", err)
	}
	telemetry, err := harness.Get("http://127.0.0.1:" + col.Telemetry + "/metrics")
	if err != nil {
		return nil, err
	}
	routeMetrics, err := harness.Get("http://" + col.RouteMetrics + "/metrics")
	if err != nil {
		return nil, err
	}
	lines := 0
	for _, l := range strings.Split(routeMetrics, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines++
		}
	}
	queue, _ := queueSpans(col, "otlp_grpc/jaeger")
	return []float64{rss, g, float64(len(fds)), sumOf(telemetry, `otelcol_connector_routelatency_series{otelcol_component_id="routelatency"`),
		sumOf(telemetry, "otelcol_processor_routelatency_routes"), float64(lines), queue}, nil
}

// sumOf adds the values of every sample of a metric in a Prometheus text exposition.
func sumOf(exposition, metric string) float64 {
	var sum float64
	for _, l := range strings.Split(exposition, "\n") {
		if strings.HasPrefix(l, metric) && strings.ContainsAny(l[len(metric):len(metric)+1], "{} ,") {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

// fit returns the least-squares slope of ys over xs, and the mean of ys.
func fit(xs, ys []float64) (slope, mean float64) {
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/float64(len(xs)), my/float64(len(ys))
	var num, den float64
	for i := range xs {
		num += (xs[i] - mx) * (ys[i] - my)
		den += (xs[i] - mx) * (xs[i] - mx)
	}
	if den == 0 {
		return 0, my
	}
	return num / den, my
}

// writeSoak writes soak.csv and soak.svg (one small chart per gauge, the last half shaded) into dir.
func writeSoak(t *testing.T, dir string, at []time.Duration, samples [][]float64) {
	var csv strings.Builder
	csv.WriteString("seconds")
	for _, g := range soakGauges {
		csv.WriteString("," + g.name)
	}
	csv.WriteString("\n")
	for i, s := range samples {
		csv.WriteString(strconv.FormatFloat(at[i].Seconds(), 'f', 0, 64))
		for _, v := range s {
			csv.WriteString("," + strconv.FormatFloat(v, 'f', 1, 64))
		}
		csv.WriteString("\n")
	}
	const w, h, cols = 300, 120, 2
	rows := (len(soakGauges) + cols - 1) / cols
	var svg strings.Builder
	fmt.Fprintf(&svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`, cols*(w+20), rows*(h+30)+20)
	svg.WriteString(`<text x="10" y="12">Soak: one chart per gauge, sampled every 10 s; shaded: the last half, where growth is judged</text>`)
	total := at[len(at)-1].Seconds()
	for g, gauge := range soakGauges {
		x0, y0 := float64(g%cols*(w+20)+10), float64(g/cols*(h+30)+40)
		maxV := 1.0
		for _, s := range samples {
			maxV = math.Max(maxV, s[g])
		}
		maxV *= 1.1
		fmt.Fprintf(&svg, `<rect x="%.0f" y="%.0f" width="%d" height="%d" fill="#f4f6fa"/>`, x0+w/2, y0, w/2, h)
		fmt.Fprintf(&svg, `<text x="%.0f" y="%.0f">%s %s (max %.0f)</text>`, x0, y0-6, gauge.name, gauge.unit, maxV/1.1)
		var pts []string
		for i, s := range samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x0+at[i].Seconds()/total*w, y0+h-s[g]/maxV*h))
		}
		fmt.Fprintf(&svg, `<polyline fill="none" stroke="#2b6cb0" stroke-width="1.5" points="%s"/>`, strings.Join(pts, " "))
		fmt.Fprintf(&svg, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#999"/>`, x0, y0+h, x0+w, y0+h)
		fmt.Fprintf(&svg, `<text x="%.0f" y="%.0f" fill="#666">0</text><text x="%.0f" y="%.0f" text-anchor="end" fill="#666">%.0f min</text>`, x0, y0+h+12, x0+w, y0+h+12, total/60)
	}
	svg.WriteString("</svg>\n")
	for name, body := range map[string]string{"soak.csv": csv.String(), "soak.svg": svg.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
