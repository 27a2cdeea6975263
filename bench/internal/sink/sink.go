// Package sink is a minimal OTLP/gRPC server that counts spans and keeps the latest metrics, so that every
// benchmark variant pays the same export cost. Trace exports are counted by walking the protobuf wire format,
// without decoding them, so that the sink never limits the throughput being measured.
package sink

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // accepts compressed exports too
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Sink counts spans (Addr) and keeps metrics exports (MetricsAddr).
type Sink struct {
	Addr, MetricsAddr string
	traces, metrics   *grpc.Server
	spans             atomic.Int64
	badRequests       atomic.Int64

	mu      sync.Mutex
	exports []pmetric.Metrics
	keep    bool
}

// Start listens on two fresh loopback ports. keepMetrics stores metrics exports (accuracy and cardinality runs).
func Start(keepMetrics bool) (*Sink, error) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{Addr: tl.Addr().String(), MetricsAddr: ml.Addr().String(), keep: keepMetrics}
	s.traces = grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.MaxRecvMsgSize(512<<20))
	s.traces.RegisterService(&traceServiceDesc, s)
	s.metrics = grpc.NewServer(grpc.MaxRecvMsgSize(512 << 20))
	pmetricotlp.RegisterGRPCServer(s.metrics, &metricsService{Sink: s})
	go func() { _ = s.traces.Serve(tl) }()
	go func() { _ = s.metrics.Serve(ml) }()
	return s, nil
}

// rawCodec hands the request bytes over as they are and answers an empty ExportTraceServiceResponse.
type rawCodec struct{}

func (rawCodec) Marshal(any) (mem.BufferSlice, error) { return mem.BufferSlice{}, nil }
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.CodecV2 = rawCodec{}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var body []byte
			if err := dec(&body); err != nil {
				return nil, err
			}
			s := srv.(*Sink)
			n, err := countSpans(body)
			if err != nil {
				s.badRequests.Add(1)
				return nil, err
			}
			s.spans.Add(int64(n))
			return &body, nil
		},
	}},
}

// countSpans walks ExportTraceServiceRequest{resource_spans=1{scope_spans=2{spans=2}}} without decoding spans.
func countSpans(b []byte) (int, error) {
	n := 0
	err := forEachField(b, 1, func(rs []byte) error {
		return forEachField(rs, 2, func(ss []byte) error {
			return forEachField(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

func forEachField(b []byte, want protowire.Number, f func([]byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.BytesType && num == want {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := f(v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

type metricsService struct {
	pmetricotlp.UnimplementedGRPCServer
	*Sink
}

// Export keeps a metrics request.
func (m *metricsService) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if m.keep {
		md := pmetric.NewMetrics()
		req.Metrics().CopyTo(md)
		m.mu.Lock()
		m.exports = append(m.exports, md)
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
	return append([]pmetric.Metrics(nil), s.exports...)
}

// Stop ends both servers.
func (s *Sink) Stop() {
	s.traces.Stop()
	s.metrics.Stop()
}
