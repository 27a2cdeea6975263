// Package faults is the fault suite of the hardened gateway (docs/reliability.md): crash, backend outage,
// overload, bad input, authentication and secrets, each against a real otelcol-apm on loopback, each printing its
// figures on a "FIGURES" line. `make faults` runs all of it; `make test` runs the fast scenarios (4-6).
package faults

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// startGateway runs config.yaml + environments/gateway.yaml, hardened, with its development route (Jaeger in the
// shipped file) pointed at sink, Datadog at a closed loopback port, and extra environment (queue size, memory).
func startGateway(t *testing.T, sink *seqSink, env ...string) *harness.Collector {
	t.Helper()
	col := newGateway(t, sink, harness.NewCredentials(t), env...)
	col.Start(t)
	return col
}

// memoryLimited is the environment of a gateway whose memory_limiter holds it to limitMiB (spike 64 MiB). The Go
// runtime's soft limit follows from it (config.yaml's soft_memory_limit: 80 %, 204.8 MiB under 256), as in the
// image: without a soft limit the heap overshoots the limiter's by what the garbage collector has not yet collected
// (fault 8 peaked at 313-356 MiB on 2026-12-02 without one, 249-252 with GOMEMLIMIT=200MiB).
func memoryLimited(limitMiB int) []string {
	return []string{fmt.Sprintf("MEMORY_LIMIT_MIB=%d", limitMiB), "MEMORY_SPIKE_LIMIT_MIB=64"}
}

// gatewayConfigs are the files a gateway of this suite runs: the shipped ones and the Datadog intake overlay.
var gatewayConfigs = []string{"config.yaml", "environments/gateway.yaml", "e2e/testdata/datadog-intake.yaml"}

// newGateway prepares a gateway as startGateway does, with the given credentials, without starting it.
func newGateway(t *testing.T, sink *seqSink, creds *harness.Credentials, env ...string) *harness.Collector {
	t.Helper()
	return newGatewayOf(t, harness.ConfigPaths(gatewayConfigs...), sink, creds, env...)
}

// newGatewayOf is newGateway with other configuration files (make capacity's variants of gatewayConfigs).
func newGatewayOf(t *testing.T, configs []string, sink *seqSink, creds *harness.Credentials, env ...string) *harness.Collector {
	t.Helper()
	return harness.NewCollector(t, configs, creds, append([]string{
		"JAEGER_OTLP_ENDPOINT=" + sink.Addr,
		"DD_API_KEY=faults-dd-key",
		"DD_INTAKE_URL=http://" + harness.Addr(t), // a closed loopback port: nothing of this suite leaves the machine
	}, env...)...)
}

// memory reads the process's current and peak resident set (MiB) from /proc.
func memory(pid int) (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kib, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kib / 1024
		case "VmHWM:":
			peak = kib / 1024
		}
	}
	return rss, peak
}

// queueSpans reads the exporter's queue size (spans) from the collector's own Prometheus telemetry.
func queueSpans(col *harness.Collector, exporter string) (float64, error) {
	body, err := harness.Get("http://127.0.0.1:" + col.Telemetry + "/metrics")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "otelcol_exporter_queue_size{") && strings.Contains(line, `exporter="`+exporter+`"`) {
			return strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		}
	}
	return 0, fmt.Errorf("no otelcol_exporter_queue_size for %s", exporter)
}

func healthy(col *harness.Collector) error {
	_, err := harness.Get("http://" + col.Health + "/")
	return err
}

// sampler records the collector's peak RSS and the exporter queue's peak while a scenario runs.
type sampler struct {
	peakRSS, peakQueue float64
	stop               chan struct{}
	done               chan struct{}
}

func sample(col *harness.Collector, exporter string) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			if rss, _ := memory(col.Pid()); rss > s.peakRSS {
				s.peakRSS = rss
			}
			if q, err := queueSpans(col, exporter); err == nil && q > s.peakQueue {
				s.peakQueue = q
			}
		}
	}()
	return s
}

func (s *sampler) finish() { close(s.stop); <-s.done }

// waitDelivered waits (bounded) until every acknowledged span reached the sink, and returns the final count.
func waitDelivered(t *testing.T, sink *seqSink, acked []uint64, timeout time.Duration) delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d := sink.delivery(acked)
		if d.Lost == 0 || time.Now().After(deadline) {
			return d
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func figures(t *testing.T, scenario, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf("FIGURES %s: %s", scenario, fmt.Sprintf(format, args...))
	t.Log(line)
	fmt.Println(line)
}

func pcommonTime(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }
