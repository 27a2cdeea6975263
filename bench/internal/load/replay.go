package load

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// codecV2 sends pre-encoded bytes as they are and discards the response body: no marshalling per request.
type codecV2 struct{}

func (codecV2) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*(v.(*[]byte)))}, nil
}
func (codecV2) Unmarshal(mem.BufferSlice, any) error { return nil }
func (codecV2) Name() string                         { return "proto" }

var _ encoding.CodecV2 = codecV2{}

// Result counts what one replay did.
type Result struct {
	AckedSpans, RefusedSpans int64
	Elapsed                  time.Duration
}

// SpansPerSecond is the acknowledged throughput.
func (r Result) SpansPerSecond() float64 { return float64(r.AckedSpans) / r.Elapsed.Seconds() }

// Replay sends the payload's requests round-robin to endpoint over conns connections with at most inflight
// requests outstanding, for duration. rate (spans/s) paces the sends; 0 sends flat out. totalSpans, when positive,
// stops after that many spans were sent. Refused requests are counted, not retried.
func Replay(ctx context.Context, endpoint string, p *Payload, conns, inflight int, rate float64, duration time.Duration, totalSpans int64) (Result, error) {
	clients := make([]*grpc.ClientConn, conns)
	for i := range clients {
		c, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(codecV2{})))
		if err != nil {
			return Result{}, err
		}
		defer c.Close()
		clients[i] = c
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()

	var acked, refused, sent atomic.Int64
	slots := make(chan struct{}, inflight)
	var wg sync.WaitGroup
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		avg := 0
		for _, n := range p.Spans {
			avg += n
		}
		interval = time.Duration(float64(time.Second) * float64(avg) / float64(len(p.Spans)) / rate)
	}
	next := start
loop:
	for i := 0; ; i++ {
		if totalSpans > 0 && sent.Load() >= totalSpans {
			break
		}
		if interval > 0 {
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break loop
				}
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		k := i % len(p.Requests)
		sent.Add(int64(p.Spans[k]))
		wg.Add(1)
		go func(conn *grpc.ClientConn, body []byte, spans int64) {
			defer wg.Done()
			defer func() { <-slots }()
			callCtx, cancelCall := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelCall()
			var reply []byte
			if err := conn.Invoke(callCtx, exportMethod, &body, &reply); err != nil {
				refused.Add(spans)
				return
			}
			acked.Add(spans)
		}(clients[i%conns], p.Requests[k], int64(p.Spans[k]))
	}
	wg.Wait()
	return Result{AckedSpans: acked.Load(), RefusedSpans: refused.Load(), Elapsed: time.Since(start)}, nil
}
