// Package sink is a minimal OTLP/gRPC server that counts spans and keeps the latest metrics, so that every
// benchmark variant pays the same export cost.
package sink

import (
	"context"
	"net"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	_ "google.golang.org/grpc/encoding/gzip" // accepts compressed exports too
)

// Sink counts spans and keeps every metrics export.
type Sink struct {
	Addr   string
	server *grpc.Server
	spans  atomic.Int64

	mu      sync.Mutex
	metrics []pmetric.Metrics
	keep    bool
}

type traceService struct {
	ptraceotlp.UnimplementedGRPCServer
	*Sink
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	*Sink
}

// Start listens on a fresh loopback port. keepMetrics stores metrics exports (the accuracy and cardinality runs).
func Start(keepMetrics bool) (*Sink, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Addr: l.Addr().String(), server: grpc.NewServer(grpc.MaxRecvMsgSize(512 << 20)), keep: keepMetrics}
	ptraceotlp.RegisterGRPCServer(s.server, &traceService{Sink: s})
	pmetricotlp.RegisterGRPCServer(s.server, &metricsService{Sink: s})
	go func() { _ = s.server.Serve(l) }()
	return s, nil
}

// Export counts the spans of a traces request.
func (s traceService) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

// Export keeps a metrics request.
func (m metricsService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if m.keep {
		md := pmetric.NewMetrics()
		req.Metrics().CopyTo(md)
		m.mu.Lock()
		m.metrics = append(m.metrics, md)
		m.mu.Unlock()
	}
	return pmetricotlp.NewExportResponse(), nil
}

// Spans returns the spans received.
func (s *Sink) Spans() int64 { return s.spans.Load() }

// Metrics returns the metrics exports received, oldest first.
func (s *Sink) Metrics() []pmetric.Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]pmetric.Metrics(nil), s.metrics...)
}

// Stop ends the server.
func (s *Sink) Stop() { s.server.Stop() }
