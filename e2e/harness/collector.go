package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Binary returns the otelcol-apm binary that `make` built once for the whole run (OTELCOL_APM_BIN).
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("OTELCOL_APM_BIN")
	if bin == "" {
		t.Fatal("OTELCOL_APM_BIN is not set: run the suites through make (make e2e), which builds bin/otelcol-apm once")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("OTELCOL_APM_BIN: %v", err)
	}
	return bin
}

// Collector is a running otelcol-apm with every endpoint of config.yaml on its own loopback port.
type Collector struct {
	*Process
	OTLPGRPC, OTLPHTTP, Health, RouteMetrics, Telemetry string
	DataDir                                             string
}

// ConfigPath returns the path of a shipped configuration file, relative to the repository root.
func ConfigPath(rel string) string { return filepath.Join(RepoRoot(), rel) }

// StartCollector runs otelcol-apm with the given configs (paths) and extra environment, and waits for health.
func StartCollector(t testing.TB, configs []string, env ...string) *Collector {
	t.Helper()
	c := &Collector{
		OTLPGRPC: Addr(t), OTLPHTTP: Addr(t), Health: Addr(t), RouteMetrics: Addr(t),
		Telemetry: fmt.Sprint(FreePort(t)), DataDir: t.TempDir(),
	}
	args := []string{}
	for _, cfg := range configs {
		args = append(args, "--config", cfg)
	}
	env = append([]string{
		"OTLP_GRPC_ENDPOINT=" + c.OTLPGRPC,
		"OTLP_HTTP_ENDPOINT=" + c.OTLPHTTP,
		"HEALTH_CHECK_ENDPOINT=" + c.Health,
		"ROUTE_METRICS_ENDPOINT=" + c.RouteMetrics,
		"TELEMETRY_METRICS_PORT=" + c.Telemetry,
		"OTELCOL_APM_DATA_DIR=" + c.DataDir,
		"ROUTE_METRICS_FLUSH_INTERVAL=1s",
		"DASHBOARD_ENDPOINT=" + Addr(t),
	}, env...)
	c.Process = Start(t, "otelcol-apm", Binary(t), args, env...)
	WaitHTTP(t, c.Process, "http://"+c.Health+"/", 30*time.Second)
	return c
}

// SendTraces exports td over OTLP/gRPC and fails the test when the collector does not acknowledge it.
func SendTraces(t testing.TB, endpoint string, td ptrace.Traces) {
	t.Helper()
	if err := ExportTraces(endpoint, td); err != nil {
		t.Fatalf("export %d spans to %s: %v", td.SpanCount(), endpoint, err)
	}
}

// ExportTraces exports td over OTLP/gRPC and returns the collector's answer.
func ExportTraces(endpoint string, td ptrace.Traces) error {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}
