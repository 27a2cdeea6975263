package faults

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	_ "go.opentelemetry.io/collector/config/configgrpc" // registers the collector's zstd codec, which exporters may use
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // the exporter compresses
	"google.golang.org/grpc/status"

	"github.com/otelcol-apm/otelcol-apm/e2e/otlpintake"
)

// seqSink is the backend of the fault scenarios: an OTLP/gRPC trace server that records how often each load span
// (identified by the sequence number in its span id) arrived. It can go down and come back on the same address
// with its record intact, and can cap its throughput to play a backend slower than the offered load.
type seqSink struct {
	t    testing.TB
	Addr string
	cap  int // spans per second; 0: as fast as it can

	mu       sync.Mutex
	seen     map[uint64]uint32
	other    int // spans without a load sequence number (bad-input probes)
	lastSpan map[string]ptraceSpanInfo
	// durations holds every distinct server span's duration (seconds) by "service route", for exact percentiles.
	durations map[string][]float64
	spanSeen  map[[24]byte]bool
	server    *grpc.Server
	capMu     sync.Mutex
	ptraceotlp.UnimplementedGRPCServer
}

// ptraceSpanInfo is what the bad-input scenario checks of a probe span that got through.
type ptraceSpanInfo struct {
	Attributes int
	Name       string
}

func startSeqSink(t testing.TB, spansPerSecond int) *seqSink {
	t.Helper()
	s := &seqSink{t: t, cap: spansPerSecond, seen: map[uint64]uint32{}, lastSpan: map[string]ptraceSpanInfo{},
		durations: map[string][]float64{}, spanSeen: map[[24]byte]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

func (s *seqSink) serve(l net.Listener) {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	ptraceotlp.RegisterGRPCServer(srv, s)
	s.mu.Lock()
	s.server = srv
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Stop takes the backend down: open connections are closed and new ones refused.
func (s *seqSink) Stop() {
	s.mu.Lock()
	srv := s.server
	s.server = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart brings the backend back on the same address.
func (s *seqSink) Restart() {
	s.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port was just released; bounded retries
		if l, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("sink cannot listen on %s again: %v", s.Addr, err)
	}
	s.serve(l)
}

func (s *seqSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	if s.cap > 0 {
		// One export at a time, each taking its share of a second: a backend that drains cap spans/s.
		s.capMu.Lock()
		time.Sleep(time.Duration(td.SpanCount()) * time.Second / time.Duration(s.cap))
		s.capMu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.server == nil {
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "sink is down")
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		service, _ := rss.At(i).Resource().Attributes().Get("service.name")
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				tid := span.TraceID()
				// The route the gateway counted the span under: {unmatched} is a mark, not an http.route.
				route := ""
				if v, ok := span.Attributes().Get("http.route"); ok {
					route = v.Str()
				} else if v, ok := span.Attributes().Get("http.route.unmatched"); ok && v.Bool() {
					route = "{unmatched}"
				}
				if route != "" {
					var id [24]byte
					sid := span.SpanID()
					copy(id[:16], tid[:])
					copy(id[16:], sid[:])
					if !s.spanSeen[id] {
						s.spanSeen[id] = true
						key := service.Str() + " " + route
						s.durations[key] = append(s.durations[key], span.EndTimestamp().AsTime().Sub(span.StartTimestamp().AsTime()).Seconds())
					}
				}
				if [8]byte(tid[:8]) == loadTraceMark {
					id := span.SpanID()
					s.seen[binary.BigEndian.Uint64(id[:])]++
					continue
				}
				s.other++
				s.lastSpan[string(tid[:])] = ptraceSpanInfo{Attributes: span.Attributes().Len(), Name: span.Name()}
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// delivery compares what the sink saw with what the load generator had acknowledged.
type delivery struct {
	Acked, Delivered, Lost, Duplicates int
}

func (s *seqSink) delivery(acked []uint64) delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := delivery{Acked: len(acked), Delivered: len(s.seen)}
	for _, seq := range acked {
		if s.seen[seq] == 0 {
			d.Lost++
		}
	}
	for _, n := range s.seen {
		if n > 1 {
			d.Duplicates += int(n - 1)
		}
	}
	return d
}

func (s *seqSink) probe(traceID [16]byte) (ptraceSpanInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, ok := s.lastSpan[string(traceID[:])]
	return info, ok
}

// routeDurations returns the distinct spans' durations (seconds) of a service's route, sorted.
func (s *seqSink) routeDurations(service, route string) []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := slices.Clone(s.durations[service+" "+route])
	slices.Sort(d)
	return d
}

// ServeOTLPHTTP serves the sink also as an OTLP/HTTP traces endpoint (protobuf on /v1/traces, gzip or zstd) that
// stands for Datadog's OTLP traces intake, answering the datadog exporter's other calls (API key validation, metric
// series, sketches, APM stats) with a bare acceptance: the production configuration's whole export, received
// without the cost of decoding what the sink does not count. It returns the base URL (DD_INTAKE_URL).
func (s *seqSink) ServeOTLPHTTP(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/validate", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"valid":true}`)
	})
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 256<<20))
		if err == nil {
			body, err = otlpintake.Decompress(r.Header.Get("Content-Encoding"), body)
		}
		req := ptraceotlp.NewExportRequest()
		if err == nil {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := s.Export(r.Context(), req); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{}`)
	})
	srv := &http.Server{Handler: mux}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String()
}
