package faults

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/otelcol-apm/otelcol-apm/e2e/ddintake"
	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
	"github.com/otelcol-apm/otelcol-apm/e2e/otlpintake"
)

// outageQueueSpans is the export queue's capacity in this scenario: small enough that a 60 s outage at the load's
// rate fills it, so that the refusals past capacity show.
const outageQueueSpans = 50000

// TestFault2BackendOutage: the backend is down for 60 s under load, then back. Every acknowledged span is delivered;
// once the queue is full, the gateway refuses new spans with a retryable error instead of growing.
func TestFault2BackendOutage(t *testing.T) {
	sink := startSeqSink(t, 0)
	col := startGateway(t, sink, "EXPORT_QUEUE_SPANS=50000")
	s := sample(col, "otlp_grpc/jaeger")
	l := newLoad(col, 2000, 2)
	stopLoad := l.start(t)

	time.Sleep(5 * time.Second)
	sink.Stop()
	time.Sleep(60 * time.Second)
	_, _, refusedDuringOutage := l.result()
	sink.Restart()
	back := time.Now()
	time.Sleep(10 * time.Second)
	stopLoad()
	acked, sent, refused := l.result()
	d := waitDelivered(t, sink, acked, 90*time.Second)
	drained := time.Since(back)
	s.finish()
	figures(t, "2 backend outage", "sent %d spans at 2000/s, acknowledged %d, refused %s (%d during the outage); delivered %d distinct, lost after acknowledgement %d, duplicates %d; queue peak %.0f of %d spans; peak RSS %.0f MiB; all delivered %.1fs after the backend came back",
		sent, d.Acked, formatCounts(refused), total(refusedDuringOutage), d.Delivered, d.Lost, d.Duplicates, s.peakQueue, outageQueueSpans, s.peakRSS, drained.Seconds())
	if d.Lost > 0 {
		t.Errorf("%d acknowledged spans never reached the backend after it came back", d.Lost)
	}
	if refusedDuringOutage[codes.Unavailable.String()] == 0 {
		t.Errorf("a full queue did not refuse spans with Unavailable; refusals: %s", formatCounts(refusedDuringOutage))
	}
	for code := range refused {
		if code != codes.Unavailable.String() && code != codes.ResourceExhausted.String() {
			t.Errorf("refusals must be retryable (Unavailable, ResourceExhausted), got %s", formatCounts(refused))
		}
	}
	if s.peakQueue > outageQueueSpans {
		t.Errorf("the queue grew to %.0f spans past its capacity of %d", s.peakQueue, outageQueueSpans)
	}
	if err := healthy(col); err != nil {
		t.Error(err)
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestFault2DatadogOutage is scenario 2 on the Datadog route: the intake answers 503 for 60 s under load. Traces go
// to Datadog's OTLP traces intake from the persistent queue (otlp_http/datadog), so every span acknowledged before,
// during and after the outage must arrive, once.
func TestFault2DatadogOutage(t *testing.T) {
	intake, err := ddintake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := startGateway(t, startSeqSink(t, 0), "DD_INTAKE_URL="+intake.URL, "DATADOG_SAMPLING_PERCENTAGE=100")
	intakeOutage(t, "2 Datadog outage", col, "datadog", intake.SetDown, func() map[uint64]int {
		seen := map[uint64]int{}
		for _, s := range intake.Spans() {
			if s.Service == "faults-load" {
				seen[s.SpanID]++
			}
		}
		return seen
	})
}

// TestFault2NewRelicOutage is scenario 2 on the New Relic overlay: its OTLP endpoint answers 503 for 60 s under
// load; every span acknowledged before, during and after the outage must arrive, once.
func TestFault2NewRelicOutage(t *testing.T) {
	const key = "faults-new-relic-license-key"
	intake, err := otlpintake.Start(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = intake.Close() })
	col := harness.NewCollector(t, []string{harness.ConfigPath("config.yaml"), harness.ConfigPath("environments/newrelic.yaml")},
		harness.NewCredentials(t), "NEW_RELIC_LICENSE_KEY="+key, "NEW_RELIC_OTLP_ENDPOINT="+intake.URL, "NEW_RELIC_SAMPLING_PERCENTAGE=100")
	col.Start(t)
	intakeOutage(t, "2 New Relic outage", col, "otlp_http/newrelic", intake.SetDown, func() map[uint64]int {
		seen := map[uint64]int{}
		for _, s := range intake.Spans() {
			if s.Service == "faults-load" {
				seen[binary.BigEndian.Uint64(s.SpanID[:])]++
			}
		}
		return seen
	})
}

// intakeOutage runs 2,000 spans/s of production load through col, takes the intake down for 60 s after 5 s, brings
// it back for 10 s, and checks that every acknowledged span (by sequence number, as seen returns them) reached the
// intake exactly once.
func intakeOutage(t *testing.T, scenario string, col *harness.Collector, exporter string, setDown func(bool), seen func() map[uint64]int) {
	t.Helper()
	l := newLoad(col, 2000, 2)
	l.environment = "production"
	s := sample(col, exporter)
	stopLoad := l.start(t)

	time.Sleep(5 * time.Second)
	ackedBefore, _, _ := l.result()
	setDown(true)
	time.Sleep(60 * time.Second)
	ackedUntilBack, _, _ := l.result()
	setDown(false)
	time.Sleep(10 * time.Second)
	stopLoad()
	acked, sent, refused := l.result()
	phases := []struct {
		name string
		seqs []uint64
	}{
		{"before the outage", ackedBefore},
		{"during it", acked[len(ackedBefore):len(ackedUntilBack)]},
		{"after it", acked[len(ackedUntilBack):]},
	}

	var got map[uint64]int
	missing := make([]int, len(phases))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		got = seen()
		for i, p := range phases {
			missing[i] = 0
			for _, seq := range p.seqs {
				if got[seq] == 0 {
					missing[i]++
				}
			}
		}
		if missing[0]+missing[1]+missing[2] == 0 || time.Now().After(deadline) {
			break
		}
	}
	s.finish()
	duplicates := 0
	for _, n := range got {
		duplicates += max(n-1, 0)
	}
	lost := make([]string, len(phases))
	for i, p := range phases {
		lost[i] = fmt.Sprintf("%d of %d acknowledged %s", missing[i], len(p.seqs), p.name)
	}
	figures(t, scenario, "sent %d spans at 2000/s, acknowledged %d, refused %s; never reached the intake: %s; duplicates %d; peak RSS %.0f MiB",
		sent, len(acked), formatCounts(refused), strings.Join(lost, ", "), duplicates, s.peakRSS)
	for i, p := range phases {
		if missing[i] > 0 {
			t.Errorf("%d spans acknowledged %s never reached the intake", missing[i], p.name)
		}
	}
	if duplicates > 0 {
		t.Errorf("%d spans reached the intake more than once", duplicates)
	}
}
