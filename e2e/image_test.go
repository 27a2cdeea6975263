package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// buildah runs buildah as `make image` does (vfs storage, chroot isolation: no daemon, no privileges beyond root).
func buildah(args ...string) *exec.Cmd {
	return exec.Command("buildah", append([]string{"--storage-driver", "vfs"}, args...)...)
}

// TestImage runs what a cluster runs: the image `make image` built (OTELCOL_APM_IMAGE; `make image-test` sets it).
// Its binary lists the components; with the default configuration it refuses to serve the route dashboard on all
// interfaces without a token; with one it starts healthy, with the route metrics and the dashboard on all
// interfaces (where an in-cluster Prometheus or a port-forward reaches them), the dashboard behind its token, and
// counts a request sent to it, with the Go runtime's soft memory limit set from the memory_limiter's. The load
// balancer overlay in the image validates.
func TestImage(t *testing.T) {
	image := os.Getenv("OTELCOL_APM_IMAGE")
	if image == "" {
		t.Skip("OTELCOL_APM_IMAGE is not set: run make image-test, which builds the image first")
	}
	name := fmt.Sprintf("otelcol-apm-test-%d", time.Now().UnixNano())
	if out, err := buildah("from", "--name", name, image).CombinedOutput(); err != nil {
		t.Fatalf("buildah from %s: %v\n%s", image, err, out)
	}
	// Every process of this test carries the container's name in its environment: buildah, buildah-chroot-exec
	// (which leaves buildah's process group and outlives a killed buildah) and the image's binary. The cleanup stops
	// them by that mark, and fails the test if any is left.
	marker := "OTELCOL_APM_IMAGE_TEST=" + name
	t.Cleanup(func() {
		if left := stopMarked(marker, 15*time.Second); len(left) > 0 {
			t.Errorf("processes of the image still running after the test: %v", left)
		}
		_ = buildah("rm", name).Run()
	})
	run := func(env []string, args ...string) *exec.Cmd {
		a := []string{"run", "--isolation", "chroot", "--env", marker}
		for _, e := range env {
			a = append(a, "--env", e)
		}
		cmd := buildah(append(append(a, name, "--", "/otelcol-apm"), args...)...)
		cmd.Env = append(os.Environ(), marker)
		return cmd
	}

	out, err := run(nil, "components").CombinedOutput()
	if err != nil {
		t.Fatalf("components: %v\n%s", err, out)
	}
	for _, c := range []string{"routelatency", "checked_file_storage", "soft_memory_limit", "loadbalancing", "datadog", "tail_sampling"} {
		if !strings.Contains(string(out), "name: "+c+"\n") {
			t.Errorf("the image's binary does not list %s", c)
		}
	}

	out, _ = run(nil, "validate", "--config", "/etc/otelcol-apm/config.yaml").CombinedOutput()
	if !strings.Contains(string(out), "dashboard.bearer_token") {
		t.Errorf("the image serves the dashboard on all interfaces: without DASHBOARD_BEARER_TOKEN it must refuse to start, naming it; got:\n%s", out)
	}

	out, err = run([]string{`GATEWAY_RESOLVER={dns: {hostname: otelcol-apm-gateway-headless, port: "4317"}}`,
		"GATEWAY_CA_FILE=/etc/ssl/certs/ca-certificates.crt", "GATEWAY_BEARER_TOKEN=t", "OTLP_TLS_CERT_FILE=/x.crt", "OTLP_TLS_KEY_FILE=/x.key", "OTLP_BEARER_TOKEN=t"},
		"validate", "--config", "/etc/otelcol-apm/environments/loadbalancer.yaml").CombinedOutput()
	if err != nil {
		t.Errorf("the image's load balancer overlay does not validate: %v\n%s", err, out)
	}

	health, metrics, dashboard, grpcPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	cmd := run([]string{
		fmt.Sprintf("HEALTH_CHECK_ENDPOINT=0.0.0.0:%d", health),
		fmt.Sprintf("ROUTE_METRICS_ENDPOINT=0.0.0.0:%d", metrics),
		fmt.Sprintf("DASHBOARD_ENDPOINT=0.0.0.0:%d", dashboard),
		fmt.Sprintf("OTLP_GRPC_ENDPOINT=0.0.0.0:%d", grpcPort),
		fmt.Sprintf("OTLP_HTTP_ENDPOINT=127.0.0.1:%d", harness.FreePort(t)),
		fmt.Sprintf("TELEMETRY_METRICS_PORT=%d", harness.FreePort(t)),
		"DASHBOARD_BEARER_TOKEN=image-dash", "ROUTE_METRICS_FLUSH_INTERVAL=1s", // data in the image's /var/lib/otelcol-apm
	}, "--config", "/etc/otelcol-apm/config.yaml")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := stopMarked(marker, 15*time.Second); len(left) > 0 {
			t.Errorf("processes of the image still running after the test: %v", left)
		}
		_ = cmd.Wait()
		for _, port := range []int{health, metrics, dashboard, grpcPort} {
			if listensOnAllInterfaces(t, port) {
				t.Errorf("port %d still listens after the image's collector was stopped", port)
			}
		}
	})
	harness.Eventually(t, 30*time.Second, "the image's collector to be healthy", func() (bool, string) {
		_, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/", health))
		return err == nil, fmt.Sprint(err, logs.String())
	})
	// The image sets no GOMEMLIMIT: the runtime's soft limit is 80 % of the memory_limiter's default 512 MiB.
	if !strings.Contains(logs.String(), `"soft_limit_mib": 409, "limit_mib": 512`) {
		t.Errorf("the image's collector did not set the Go runtime's soft memory limit from MEMORY_LIMIT_MIB:\n%s", logs.String())
	}
	for _, port := range []int{health, metrics, dashboard, grpcPort} {
		if !listensOnAllInterfaces(t, port) {
			t.Errorf("port %d listens on loopback only in the image", port)
		}
	}

	col := &harness.Collector{OTLPGRPC: fmt.Sprintf("127.0.0.1:%d", grpcPort)}
	td, _ := harness.Traces(harness.Request{Service: "image-shop", Method: "GET", Path: "/items/42", Status: 200, Duration: 8 * time.Millisecond})
	col.Send(t, td)
	harness.Eventually(t, 20*time.Second, "the request in the image's route metrics", func() (bool, string) {
		body, err := harness.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", metrics))
		return err == nil && strings.Contains(body, `service_name="image-shop"`), fmt.Sprint(err)
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/api/routes", dashboard)
	if res, err := http.Get(url); err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("dashboard without its token: %v %v, want 401", err, res)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer image-dash")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("dashboard with its token: %v %v, want 200", err, res)
	}
}

// listensOnAllInterfaces reads /proc/net/tcp{,6} for a listening socket on port bound to the wildcard address.
func listensOnAllInterfaces(t *testing.T, port int) bool {
	hexPort := fmt.Sprintf(":%04X", port)
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		body, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(body), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" || !strings.HasSuffix(f[1], hexPort) { // 0A: LISTEN
				continue
			}
			addr := strings.TrimSuffix(f[1], hexPort)
			if strings.Trim(addr, "0") == "" {
				return true
			}
		}
	}
	return false
}

// markedProcesses lists the pids whose environment holds marker.
func markedProcesses(marker string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		environ, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue
		}
		if slices.Contains(strings.Split(string(environ), "\x00"), marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// stopMarked sends SIGTERM to every process carrying marker, SIGKILL to those still there after grace, and returns
// the ones that outlived both (with their command lines).
func stopMarked(marker string, grace time.Duration) []string {
	signal := func(sig syscall.Signal) {
		for _, pid := range markedProcesses(marker) {
			_ = syscall.Kill(pid, sig)
		}
	}
	gone := func(within time.Duration) bool {
		for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if len(markedProcesses(marker)) == 0 {
				return true
			}
		}
		return len(markedProcesses(marker)) == 0
	}
	signal(syscall.SIGTERM)
	if gone(grace) {
		return nil
	}
	signal(syscall.SIGKILL)
	if gone(5 * time.Second) {
		return nil
	}
	var left []string
	for _, pid := range markedProcesses(marker) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		left = append(left, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return left
}
