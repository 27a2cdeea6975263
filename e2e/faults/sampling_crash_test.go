package faults

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// TestFault7CrashWithSampling: kill -9 under load on the Datadog route, whose traces wait in the tail sampler's
// memory until their decision (2 s after the root span); sampling at 100 % so that every span not delivered is a
// loss. This measures the window that sampling opens in the crash guarantee and asserts its bound: no more than what
// arrived in the last decision wait, a second of timer slack and batch/sampled's timeout before the kill; everything
// acknowledged after the restart arrives.
func TestFault7CrashWithSampling(t *testing.T) {
	// What waits after acknowledgement: a trace until its decision (decision_wait after its root, plus up to a
	// second of the sampler's tick), then up to batch/sampled's timeout in that batch, before the queue holds it.
	const rate, decisionWait, sampledBatch = 2000, 2 * time.Second, 200 * time.Millisecond
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := startGateway(t, startSeqSink(t, 0), "DD_INTAKE_URL="+intake.URL, "DATADOG_SAMPLING_PERCENTAGE=100")
	l := newLoad(col, rate, 2)
	l.environment = "production"
	stopLoad := l.start(t)

	time.Sleep(10 * time.Second)
	col.Kill()
	time.Sleep(2 * time.Second)
	// Taken while the gateway is down, not just before the kill: a response the killed process sent before it died
	// may reach its client after the kill, and what that process acknowledged is not "after the restart".
	ackedAtKill, _, _ := l.result()
	col.Start(t)
	time.Sleep(10 * time.Second)
	stopLoad()
	acked, sent, refused := l.result()

	delivered := func() map[uint64]int {
		seen := map[uint64]int{}
		for _, s := range intake.Spans() {
			if s.Service == "faults-load" {
				seen[s.SpanID]++
			}
		}
		return seen
	}
	var lostBefore, lostAfter, duplicates int
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		seen := delivered()
		lostBefore, lostAfter, duplicates = 0, 0, 0
		for i, seq := range acked {
			if seen[seq] == 0 {
				if i < len(ackedAtKill) {
					lostBefore++
				} else {
					lostAfter++
				}
			}
		}
		for _, n := range seen {
			duplicates += max(n-1, 0)
		}
		if lostAfter == 0 || time.Now().After(deadline) {
			break
		}
	}
	window := decisionWait + time.Second + sampledBatch
	bound := int(float64(rate) * window.Seconds())
	figures(t, "7 crash with sampling", "sent %d spans at %d/s, acknowledged %d (%d before the kill), refused %s; lost after acknowledgement: %d acknowledged before the kill (bound %d: %s of traffic waiting for its sampling decision), %d after the restart; duplicates %d",
		sent, rate, len(acked), len(ackedAtKill), formatCounts(refused), lostBefore, bound, window, lostAfter, duplicates)
	if lostBefore > bound {
		t.Errorf("%d spans acknowledged before the kill were lost, more than the %d that wait for a decision", lostBefore, bound)
	}
	if lostAfter > 0 {
		t.Errorf("%d spans acknowledged after the restart never arrived", lostAfter)
	}
}

// TestFault8SamplingBurst: ten times scenario 7's load on the Datadog route, every span its own trace, with the
// shipped sampling: the tail sampler holds at most SAMPLING_MAX_TRACES waiting traces (it drops the oldest undecided
// beyond that, and counts them), memory stays under the limit plus the margin, clients get retryable refusals only,
// and the gateway is healthy afterwards.
func TestFault8SamplingBurst(t *testing.T) {
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := startGateway(t, startSeqSink(t, 0), append(memoryLimited(overloadMemMiB), "DD_INTAKE_URL="+intake.URL)...)
	l := newLoad(col, 20000, 8)
	l.environment = "production"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	acked, sent, refused := l.result()
	_, peak := memory(col.Pid())
	droppedEarly := telemetryValue(col, "otelcol_processor_tail_sampling_sampling_trace_dropped_too_early")
	figures(t, "8 sampling burst", "offered %.0f spans/s (each its own trace) for %.0fs on the Datadog route: acknowledged %d, refused %s; traces dropped undecided past SAMPLING_MAX_TRACES: %s; peak RSS %.0f MiB (limit %d + margin %d)",
		float64(sent)/elapsed.Seconds(), elapsed.Seconds(), len(acked), formatCounts(refused), droppedEarly, peak, overloadMemMiB, rssMarginMiB)
	if peak > overloadMemMiB+rssMarginMiB {
		t.Errorf("peak RSS %.0f MiB is over the memory limit %d MiB plus %d MiB", peak, overloadMemMiB, rssMarginMiB)
	}
	for code := range refused {
		if code != codes.Unavailable.String() && code != codes.ResourceExhausted.String() {
			t.Errorf("refusals must be retryable (Unavailable, ResourceExhausted), got %s", formatCounts(refused))
		}
	}
	if err := healthy(col); err != nil {
		t.Error(err)
	}
}

// telemetryValue returns the sum of a metric's samples on the gateway's own telemetry endpoint, as text.
func telemetryValue(col *harness.Collector, metric string) string {
	body, err := harness.Get("http://127.0.0.1:" + col.Telemetry + "/metrics")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var sum float64
	found := false
	for _, line := range strings.Split(body, "\n") {
		if name, rest, ok := strings.Cut(line, " "); ok && (name == metric || strings.HasPrefix(name, metric+"{")) {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				sum += v
				found = true
			}
		}
	}
	if !found {
		return "0 (metric not reported)"
	}
	return strconv.FormatFloat(sum, 'f', 0, 64)
}
