package faults

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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

// capacitySetup is a shipped configuration as TestCapacity runs it, in one of its variants.
type capacitySetup struct {
	name        string
	environment string // the load's deployment.environment.name
	// start runs the configuration against sink and returns the process the load goes to and the processes whose
	// CPU the figure counts.
	start func(t *testing.T, sink *seqSink, v capacityVariant) (target *harness.Collector, measured []*harness.Collector)
}

// capacityVariant is what a paired round compares: the shipped files, the same without the routelatency component,
// or the shipped files with an overlay (a change to measure before it ships).
type capacityVariant struct {
	name             string
	withoutComponent bool
	overlay          string
	env              []string // NAME=value for the measured processes (GOGC, GOMEMLIMIT)
	args             []string // command-line flags for them (--feature-gates=...)
}

// prepare gives the variant's processes, before they start, its environment and command-line flags.
func (v capacityVariant) prepare(cols ...*harness.Collector) {
	for _, c := range cols {
		// CAPACITY_ENV is for both variants (the memory limiter's size, for one), the variant's own comes after.
		for _, kv := range append(strings.Fields(os.Getenv("CAPACITY_ENV")), v.env...) {
			c.Setenv(kv)
		}
		c.AddArgs(v.args...)
	}
}

// configs is the shipped files of a setup as the variant has them.
func (v capacityVariant) configs(t *testing.T, files ...string) []string {
	paths := harness.ConfigPaths(files...)
	if v.overlay != "" {
		paths = append(paths, harness.ConfigPath(v.overlay))
	}
	if v.withoutComponent {
		return []string{harness.WithoutRouteLatency(t, paths...)}
	}
	return paths
}

var capacitySetups = []capacitySetup{
	{
		// production.yaml: TLS and token in, the routelatency processor and connector, the datadog connector's APM
		// stats, tail sampling (every trace kept here, so that each acknowledged span can be found), the persistent
		// queue and OTLP/HTTP to Datadog's intake (a loopback double).
		name: "production", environment: "production",
		start: func(t *testing.T, sink *seqSink, v capacityVariant) (*harness.Collector, []*harness.Collector) {
			col := harness.NewCollector(t, v.configs(t, "config.yaml", "environments/production.yaml", "e2e/testdata/datadog-intake.yaml"),
				harness.NewCredentials(t), "DD_API_KEY=capacity-dd-key", "DD_INTAKE_URL="+sink.ServeOTLPHTTP(t),
				"DATADOG_SAMPLING_PERCENTAGE=100", "SAMPLING_MAX_TRACES=200000")
			v.prepare(col)
			col.Start(t)
			return col, []*harness.Collector{col}
		},
	},
	{
		// gateway.yaml on its development route: TLS and token in, routelatency, the persistent queue, OTLP/gRPC out.
		name: "gateway", environment: "development",
		start: func(t *testing.T, sink *seqSink, v capacityVariant) (*harness.Collector, []*harness.Collector) {
			col := newGatewayOf(t, v.configs(t, gatewayConfigs...), sink, harness.NewCredentials(t))
			v.prepare(col)
			col.Start(t)
			return col, []*harness.Collector{col}
		},
	},
	{
		// loadbalancer.yaml in front of the gateway: the pair's CPU counts (the load balancer has no routelatency;
		// the gateway behind it has it or not).
		name: "load balancer", environment: "development",
		start: func(t *testing.T, sink *seqSink, v capacityVariant) (*harness.Collector, []*harness.Collector) {
			creds := harness.NewCredentials(t)
			gw := newGatewayOf(t, v.configs(t, gatewayConfigs...), sink, creds)
			v.prepare(gw)
			gw.Start(t)
			lb := harness.NewCollector(t, []string{harness.ConfigPath("environments/loadbalancer.yaml")}, creds,
				"GATEWAY_RESOLVER={static: {hostnames: [\""+gw.OTLPGRPC+"\"]}}", "GATEWAY_CA_FILE="+creds.CertFile,
				"GATEWAY_BEARER_TOKEN="+creds.Token)
			v.prepare(lb)
			lb.Start(t)
			return lb, []*harness.Collector{lb, gw}
		},
	},
}

// capacityRun is one measurement: spans acknowledged per CPU second of the measured processes.
type capacityRun struct {
	spansPerCPUSecond, spansPerSecond, cores float64
	lost, duplicates                         int
	// refused counts the spans the collector refused, by gRPC status (flat out, a queue that fills refuses): a run
	// that refused any spent CPU decoding requests it counted no span for, so its figure measures where the queue
	// filled as much as the configuration.
	refused map[string]int
	// perProcess is the spans per CPU second of each measured process alone (the load balancer, then its gateway).
	perProcess []float64
}

// TestCapacity measures what docs/scaling.md sizes replicas with: spans per CPU second of each shipped
// configuration (production, gateway, load balancer with its gateway) under as much load as this machine's
// generator makes, in paired rounds against the same configuration without the routelatency component (what a
// team running stock contrib with the same hardening would have), at several request sizes. Each run checks that
// every acknowledged span was delivered. `make capacity`; not in make test (it reports, it does not assert
// figures). CAPACITY_AB=overlay.yaml (and/or CAPACITY_AB_ENV="GOGC=200 ...") compares the shipped files with the
// overlay added (the environment set) instead: a change measured before it ships, the ratio its gain; CAPACITY_ENV
// sets environment for both variants. CAPACITY_SETUPS (production,gateway,load balancer), CAPACITY_SIZES (spans
// per request: 1,10,100,1000), CAPACITY_ROUNDS (3) and CAPACITY_SECONDS (10) narrow or widen it;
// CAPACITY_PROFILE_DIR gets a CPU profile of the first round of each setup, size and variant.
func TestCapacity(t *testing.T) {
	if os.Getenv("CAPACITY") == "" {
		t.Skip("CAPACITY is not set: make capacity runs it")
	}
	seconds := envInt("CAPACITY_SECONDS", 10)
	rounds := envInt("CAPACITY_ROUNDS", 3)
	sizes := []int{1, 10, 100, 1000}
	if v := os.Getenv("CAPACITY_SIZES"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				t.Fatalf("CAPACITY_SIZES: %q is not a positive number of spans", s)
			}
			sizes = append(sizes, n)
		}
	}
	setups := capacitySetups
	if v := os.Getenv("CAPACITY_SETUPS"); v != "" {
		setups = nil
		for _, s := range capacitySetups {
			if slices.Contains(strings.Split(v, ","), s.name) {
				setups = append(setups, s)
			}
		}
	}
	variants := [2]capacityVariant{{name: "shipped"}, {name: "without routelatency", withoutComponent: true}}
	overlay, env, args := os.Getenv("CAPACITY_AB"), os.Getenv("CAPACITY_AB_ENV"), os.Getenv("CAPACITY_AB_ARGS")
	if overlay != "" || env != "" || args != "" {
		// A change measured against what ships: its variant first, so that the ratio reads as its gain.
		what := strings.TrimSpace(env + " " + args)
		if overlay != "" {
			what = strings.TrimSpace(filepath.Base(overlay) + " " + what)
		}
		v := capacityVariant{name: "with " + what, overlay: overlay, env: strings.Fields(env), args: strings.Fields(args)}
		variants = [2]capacityVariant{v, {name: "shipped"}}
	}
	var table []string
	for _, setup := range setups {
		for _, size := range sizes {
			runs := [2][]capacityRun{}
			for round := range rounds {
				// Paired and alternated: each round runs both variants back to back, the first one alternating, so
				// that a slow stretch of the shared machine weighs on both.
				for _, i := range [][2]int{{0, 1}, {1, 0}}[round%2] {
					v := variants[i]
					name := fmt.Sprintf("%s/%d spans per request/round %d/%s", setup.name, size, round+1, v.name)
					t.Run(name, func(t *testing.T) {
						run := measureCapacity(t, setup, size, seconds, v, round == 0)
						runs[i] = append(runs[i], run)
						alone := ""
						if len(run.perProcess) > 1 {
							alone = fmt.Sprintf(" (each process alone: %.0f, %.0f)", run.perProcess[0], run.perProcess[1])
						}
						figures(t, "capacity", "%s: %.0f spans/s acknowledged on %.2f cores (refused: %s): %.0f spans per CPU second%s; %d acknowledged spans lost, %d duplicates",
							name, run.spansPerSecond, run.cores, formatCounts(run.refused), run.spansPerCPUSecond, alone, run.lost, run.duplicates)
					})
				}
			}
			table = append(table, capacityRow(setup.name, size, runs[0], runs[1]))
		}
	}
	summary := fmt.Sprintf("| configuration | spans per request | %s: spans per CPU second, median (range) | %s | ratio, median (range of rounds) | runs that refused requests | acknowledged spans lost |\n|---|---|---|---|---|---|---|\n",
		variants[0].name, variants[1].name) +
		strings.Join(table, "\n")
	t.Log("\n" + summary)
	fmt.Println("FIGURES capacity table (" + strconv.Itoa(rounds) + " paired rounds of " + strconv.Itoa(seconds) + " s):\n" + summary)
}

func envInt(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return fallback
}

// measureCapacity runs one setup flat out for seconds after a warm-up, then checks that every acknowledged span
// reached the sink once.
func measureCapacity(t *testing.T, setup capacitySetup, size, seconds int, v capacityVariant, profile bool) capacityRun {
	sink := startSeqSink(t, 0)
	target, measured := setup.start(t, sink, v)
	l := newLoad(target, 400_000, 8) // more than the machine can send: flat out
	l.environment = setup.environment
	l.batch = size
	l.spansPerTrace = min(size, 10) // ten spans per trace, as services with a few children per request send them
	stop := l.start(t)
	time.Sleep(3 * time.Second) // warm up
	cpu := func() []float64 {
		out := make([]float64, len(measured))
		for i, c := range measured {
			out[i] = cpuSeconds(t, c.Pid())
		}
		return out
	}
	cpu0 := cpu()
	acked0, _, _ := l.result()
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if dir := os.Getenv("CAPACITY_PROFILE_DIR"); dir != "" && profile {
			// A CPU profile of the process the load goes to, over the measurement, for `go tool pprof`.
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", target.Pprof, seconds-1))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(fmt.Sprintf("%s/%s-%d-%s.pprof", dir, strings.ReplaceAll(setup.name, " ", "-"), size,
				strings.ReplaceAll(v.name, " ", "-")), body, 0o644)
		}
	}()
	time.Sleep(time.Duration(seconds) * time.Second)
	<-profiled
	cpu1 := cpu()
	acked1, _, _ := l.result()
	stop()
	acked, _, refused := l.result()
	d := waitDelivered(t, sink, acked, 2*time.Minute)
	if d.Lost > 0 {
		t.Errorf("%d of %d acknowledged spans never reached the backend (refused: %s)", d.Lost, d.Acked, formatCounts(refused))
	}
	spans := float64(len(acked1) - len(acked0))
	run := capacityRun{spansPerSecond: spans / float64(seconds), lost: d.Lost, duplicates: d.Duplicates, refused: refused}
	used := 0.0
	for i := range cpu1 {
		used += cpu1[i] - cpu0[i]
		run.perProcess = append(run.perProcess, spans/(cpu1[i]-cpu0[i]))
	}
	run.spansPerCPUSecond, run.cores = spans/used, used/float64(seconds)
	return run
}

// capacityRow is one line of the table: medians and ranges over the rounds, and the per-round ratio (round i of the
// first variant against round i of the second: the pairs ran back to back).
func capacityRow(setup string, size int, first, second []capacityRun) string {
	rate := func(runs []capacityRun) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = r.spansPerCPUSecond
		}
		return out
	}
	var ratios []float64
	lost, refusing := 0, 0
	for i := range min(len(first), len(second)) {
		ratios = append(ratios, first[i].spansPerCPUSecond/second[i].spansPerCPUSecond)
	}
	for _, r := range append(slices.Clone(first), second...) {
		lost += r.lost
		if len(r.refused) > 0 {
			refusing++
		}
	}
	k := func(v float64) string { return fmt.Sprintf("%.0f k", v/1000) }
	spread := func(v []float64, f func(float64) string) string {
		if len(v) == 0 {
			return "-"
		}
		s := slices.Sorted(slices.Values(v))
		return fmt.Sprintf("%s (%s–%s)", f(median(s)), f(s[0]), f(s[len(s)-1]))
	}
	return fmt.Sprintf("| %s | %d | %s | %s | %s | %d of %d | %d |", setup, size, spread(rate(first), k), spread(rate(second), k),
		spread(ratios, func(v float64) string { return fmt.Sprintf("%.2f", v) }), refusing, len(first)+len(second), lost)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
