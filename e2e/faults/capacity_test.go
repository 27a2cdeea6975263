package faults

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// cpuSeconds reads a process's user + system CPU time from /proc.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name (which may hold spaces) start after the last ')'.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks (USER_HZ = 100 on Linux)
}

// TestCapacity measures what docs/scaling.md sizes replicas with: spans per CPU second of the hardened gateway
// (gateway.yaml: TLS, token, routelatency, transform, persistent queue) and of the load balancer in front of it,
// under as much load as this machine's generator makes. `make capacity`; not in make test (it reports, it does not
// judge).
func TestCapacity(t *testing.T) {
	if os.Getenv("CAPACITY") == "" {
		t.Skip("CAPACITY is not set: make capacity runs it")
	}
	const seconds = 20
	perTrace := 1
	if v, err := strconv.Atoi(os.Getenv("CAPACITY_SPANS_PER_TRACE")); err == nil && v > 0 {
		perTrace = v
	}
	for _, via := range []string{"gateway", "load balancer"} {
		t.Run(via, func(t *testing.T) {
			sink := startSeqSink(t, 0)
			creds := harness.NewCredentials(t)
			gw := newGateway(t, sink, creds)
			gw.Start(t)
			target := gw
			if via == "load balancer" {
				target = harness.NewCollector(t, []string{harness.ConfigPath("environments/loadbalancer.yaml")}, creds,
					"GATEWAY_RESOLVER={static: {hostnames: [\""+gw.OTLPGRPC+"\"]}}", "GATEWAY_CA_FILE="+creds.CertFile,
					"GATEWAY_BEARER_TOKEN="+creds.Token)
				target.Start(t)
			}
			l := newLoad(target, 200000, 8) // more than the machine can send: flat out
			l.spansPerTrace = perTrace
			stop := l.start(t)
			time.Sleep(3 * time.Second) // warm up
			gwCPU0, tgCPU0 := cpuSeconds(t, gw.Pid()), cpuSeconds(t, target.Pid())
			acked0, _, _ := l.result()
			profiled := make(chan struct{})
			go func() {
				defer close(profiled)
				if dir := os.Getenv("CAPACITY_PROFILE_DIR"); dir != "" {
					// A CPU profile of the gateway over the measurement, for `go tool pprof`.
					resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", gw.Pprof, seconds-2))
					if err != nil {
						t.Error(err)
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					_ = os.WriteFile(dir+"/gateway-"+strings.ReplaceAll(via, " ", "-")+".pprof", body, 0o644)
				}
			}()
			time.Sleep(seconds * time.Second)
			<-profiled
			gwCPU, tgCPU := cpuSeconds(t, gw.Pid())-gwCPU0, cpuSeconds(t, target.Pid())-tgCPU0
			acked1, _, refused := l.result()
			stop()
			spans := float64(len(acked1) - len(acked0))
			if via == "gateway" {
				figures(t, "capacity", "hardened gateway alone, %d spans per trace, %d s flat out on 2 cores shared with the load generator and the sink: %.0f spans/s acknowledged (refused %s), gateway CPU %.2f cores: %.0f spans per CPU second",
					perTrace, seconds, spans/seconds, formatCounts(refused), gwCPU/seconds, spans/gwCPU)
			} else {
				figures(t, "capacity", "load balancer in front of one gateway, %d spans per trace, %d s flat out: %.0f spans/s acknowledged (refused %s), load balancer CPU %.2f cores: %.0f spans per CPU second; gateway %.0f spans per CPU second",
					perTrace, seconds, spans/seconds, formatCounts(refused), tgCPU/seconds, spans/tgCPU, spans/gwCPU)
			}
		})
	}
}
