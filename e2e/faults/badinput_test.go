package faults

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/otelcol-apm/otelcol-apm/e2e/harness"
)

// badInputMemMiB is the gateway's memory limit in this scenario; its RSS must stay under it plus rssMarginMiB.
const badInputMemMiB = 256

// answer is what the gateway said to one bad request.
type answer struct {
	status   string // gRPC status code or HTTP status
	accepted bool
	detail   string
}

// TestFault4BadInput: malformed and truncated protobuf, wrong content type, invalid JSON, an oversized body, a gzip
// bomb, invalid UTF-8 and 100k attributes on one span, over gRPC and HTTP, from an authenticated client. Each is
// answered with an error, except the 100k attributes: valid OTLP, acknowledged, and bounded before it goes on. The
// process keeps serving, loses nothing it had accepted, and its memory stays bounded.
func TestFault4BadInput(t *testing.T) {
	sink := startSeqSink(t, 0)
	col := startGateway(t, sink, memoryLimited(badInputMemMiB)...)
	c := newRawClient(col)
	before := loadTraces(1, 100)
	col.Send(t, before)

	valid := mustMarshal(t, loadTraces(1000, 50))
	oversized := mustMarshal(t, probeTraces(probeOversized, func(span ptrace.Span) {
		span.Attributes().PutStr("blob", strings.Repeat("x", 20<<20))
	}))
	manyAttributes := probeTraces(probeManyAttributes, func(span ptrace.Span) {
		a := span.Attributes()
		a.EnsureCapacity(100_000)
		for i := 0; i < 100_000; i++ {
			a.PutInt(fmt.Sprintf("attr.%06d", i), int64(i))
		}
	})
	invalidUTF8 := probeTraces(probeInvalidUTF8, func(span ptrace.Span) {
		span.SetName("GET /items/\xff\xfe")
		span.Attributes().PutStr("url.path", "/items/\xc3\x28")
	})
	bomb := gzipBomb(t)

	type probe struct {
		name    string
		send    func() answer
		mayPass bool // valid OTLP whose content is hostile: acknowledging it is right if what goes on is bounded
	}
	probes := []probe{
		{"gRPC malformed protobuf", func() answer { return c.grpc(bytes.Repeat([]byte{0xff}, 64), "") }, false},
		{"gRPC truncated protobuf", func() answer { return c.grpc(valid[:len(valid)/2], "") }, false},
		{"gRPC oversized message (20 MiB)", func() answer { return c.grpc(oversized, "") }, false},
		{fmt.Sprintf("gRPC gzip bomb (%d KiB, 2 GiB inflated)", len(bomb)>>10), func() answer { return c.grpc(bomb, "gzip") }, false},
		{"gRPC 100k attributes on one span", func() answer { return c.grpc(mustMarshal(t, manyAttributes), "") }, true},
		{"gRPC invalid UTF-8", func() answer { return c.grpc(mustMarshal(t, invalidUTF8), "") }, false},
		{"HTTP malformed protobuf", func() answer { return c.http("application/x-protobuf", "", bytes.Repeat([]byte{0xff}, 64)) }, false},
		{"HTTP truncated protobuf", func() answer { return c.http("application/x-protobuf", "", valid[:len(valid)/2]) }, false},
		{"HTTP wrong content type", func() answer { return c.http("text/plain", "", valid) }, false},
		{"HTTP invalid JSON", func() answer { return c.http("application/json", "", []byte(`{"resourceSpans":[{`)) }, false},
		{"HTTP oversized body (20 MiB)", func() answer { return c.http("application/x-protobuf", "", oversized) }, false},
		{fmt.Sprintf("HTTP gzip bomb (%d KiB, 2 GiB inflated)", len(bomb)>>10), func() answer { return c.http("application/x-protobuf", "gzip", bomb[5:]) }, false},
		{"HTTP invalid UTF-8 (protobuf)", func() answer { return c.http("application/x-protobuf", "", mustMarshal(t, invalidUTF8)) }, false},
		{"HTTP 100k attributes on one span", func() answer { return c.http("application/x-protobuf", "", mustMarshal(t, manyAttributes)) }, true},
		{"HTTP invalid UTF-8 (JSON)", func() answer {
			return c.http("application/json", "", []byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"deployment.environment.name","value":{"stringValue":"development"}}]},"scopeSpans":[{"spans":[{"traceId":"70726f62650400000000000000000000","spanId":"eee19b7ec3c1b174","name":"GET /items/`+"\xff\xfe"+`","kind":2}]}]}]}`))
		}, true},
	}
	for _, p := range probes {
		a := p.send()
		figures(t, "4 bad input", "%s: %s%s", p.name, a.status, a.detail)
		if a.accepted && !p.mayPass {
			t.Errorf("%s was acknowledged (%s)", p.name, a.status)
		}
		if err := healthy(col); err != nil || col.Exited() {
			t.Fatalf("after %s the gateway is not serving: %v (exited: %v)", p.name, err, col.Exited())
		}
	}

	// The hostile-but-valid spans that were acknowledged must come out bounded.
	harness.Eventually(t, 30*time.Second, "the 100k-attribute probe at the backend", func() (bool, string) {
		info, ok := sink.probe(probeManyAttributes)
		if !ok {
			return false, "not delivered"
		}
		if info.Attributes > maxSpanAttributes {
			t.Errorf("the span with 100k attributes left the gateway with %d attributes (limit %d)", info.Attributes, maxSpanAttributes)
		}
		return true, ""
	})

	for _, id := range [][16]byte{probeInvalidUTF8, probeInvalidJSON} {
		if _, ok := sink.probe(id); ok {
			t.Errorf("a span with invalid UTF-8 (probe %d) reached the backend", id[5])
		}
	}

	after := loadTraces(2000, 100)
	col.Send(t, after)
	acked := append(seqs(1, 100), seqs(2000, 100)...)
	d := waitDelivered(t, sink, acked, 30*time.Second)
	_, peak := memory(col.Pid())
	figures(t, "4 bad input", "spans accepted before and after the bad input: %d, delivered %d, lost %d; peak RSS %.0f MiB (limit %d + margin %d)",
		d.Acked, d.Acked-d.Lost, d.Lost, peak, badInputMemMiB, rssMarginMiB)
	if d.Lost > 0 {
		t.Errorf("%d spans accepted around the bad input were lost", d.Lost)
	}
	if peak > badInputMemMiB+rssMarginMiB {
		t.Errorf("peak RSS %.0f MiB is over the memory limit %d MiB plus %d MiB", peak, badInputMemMiB, rssMarginMiB)
	}
}

// maxSpanAttributes is the attribute limit per span of the hardened configurations (the routelatency processor's limits).
const maxSpanAttributes = 128

// Probe spans carry their own trace ids, so that the sink reports them apart from the load.
var (
	probeOversized      = [16]byte{'p', 'r', 'o', 'b', 'e', 1}
	probeManyAttributes = [16]byte{'p', 'r', 'o', 'b', 'e', 2}
	probeInvalidUTF8    = [16]byte{'p', 'r', 'o', 'b', 'e', 3}
	probeInvalidJSON    = [16]byte{'p', 'r', 'o', 'b', 'e', 4} // the traceId of the invalid UTF-8 JSON request
	probeOverloadHTTP   = [16]byte{'p', 'r', 'o', 'b', 'e', 5}
)

func probeTraces(traceID [16]byte, shape func(ptrace.Span)) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "faults-probe")
	rs.Resource().Attributes().PutStr("deployment.environment.name", "development")
	span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	span.SetTraceID(traceID)
	span.SetSpanID([8]byte{1})
	span.SetKind(ptrace.SpanKindServer)
	span.SetName("GET /items/{item_id}")
	now := time.Now()
	span.SetStartTimestamp(pcommonTime(now.Add(-time.Millisecond)))
	span.SetEndTimestamp(pcommonTime(now))
	span.Attributes().PutStr("http.request.method", "GET")
	span.Attributes().PutInt("http.response.status_code", 200)
	shape(span)
	return td
}

func seqs(first uint64, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = first + uint64(i)
	}
	return out
}

func mustMarshal(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gzipBomb returns a gRPC message frame (flag, length, payload) whose payload is 64 concatenated gzip members of
// 32 MiB of zeros each: about 2 MiB on the wire, 2 GiB inflated. payload = frame[5:].
func gzipBomb(t *testing.T) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 32; i++ {
		_, _ = zw.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat(member.Bytes(), 64)
	frame := make([]byte, 5, 5+len(payload))
	frame[0] = 1 // compressed
	binary.BigEndian.PutUint32(frame[1:], uint32(len(payload)))
	return append(frame, payload...)
}

// rawClient speaks OTLP to the hardened gateway byte for byte: gRPC as HTTP/2 frames (so that it can send what no
// gRPC library would), and OTLP/HTTP, both over TLS with the bearer token.
type rawClient struct {
	col    *harness.Collector
	client *http.Client
}

func newRawClient(col *harness.Collector) *rawClient {
	tr := &http.Transport{TLSClientConfig: col.Creds.ClientTLS(), ForceAttemptHTTP2: true}
	tr.TLSClientConfig.NextProtos = []string{"h2", "http/1.1"}
	return &rawClient{col: col, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// grpc sends one Export call. body is either a serialized request (framed here) or, with encoding set, a whole
// frame that is already compressed.
func (c *rawClient) grpc(body []byte, encoding string) answer {
	frame := body
	if encoding == "" {
		frame = make([]byte, 5, 5+len(body))
		binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
		frame = append(frame, body...)
	}
	headers := map[string]string{"Content-Type": "application/grpc", "TE": "trailers"}
	if encoding != "" {
		headers["Grpc-Encoding"] = encoding
	}
	resp, err := c.post(c.col.OTLPGRPC+"/opentelemetry.proto.collector.trace.v1.TraceService/Export", headers, frame)
	if err != nil {
		return answer{status: "transport error", detail: ": " + err.Error()}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	code, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if code == "" { // trailers-only answer
		code, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	return answer{status: "grpc-status " + grpcCodeName(code), accepted: code == "0", detail: shorten(msg)}
}

func (c *rawClient) http(contentType, encoding string, body []byte) answer {
	headers := map[string]string{"Content-Type": contentType}
	if encoding != "" {
		headers["Content-Encoding"] = encoding
	}
	resp, err := c.post(c.col.OTLPHTTP+"/v1/traces", headers, body)
	if err != nil {
		return answer{status: "transport error", detail: ": " + err.Error()}
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 == 2 {
		return answer{status: "HTTP " + resp.Status, accepted: true} // the body is a binary ExportTraceServiceResponse
	}
	if resp.Header.Get("Content-Type") == "application/x-protobuf" { // a google.rpc.Status
		var st spb.Status
		if err := proto.Unmarshal(msg, &st); err == nil {
			return answer{status: "HTTP " + resp.Status, detail: shorten(st.GetMessage())}
		}
	}
	return answer{status: "HTTP " + resp.Status, detail: shorten(string(msg))}
}

// post sends body over TLS with the bearer token; the caller reads and closes the answer.
func (c *rawClient) post(hostPath string, headers map[string]string, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, "https://"+hostPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", "Bearer "+c.col.Creds.Token)
	return c.client.Do(req) // bounded by the client's timeout
}

func shorten(msg string) string {
	msg = strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
	if msg == "" {
		return ""
	}
	if len(msg) > 140 {
		msg = msg[:140] + "…"
	}
	return " (" + msg + ")"
}

func grpcCodeName(code string) string {
	names := map[string]string{"0": "OK", "3": "InvalidArgument", "8": "ResourceExhausted", "12": "Unimplemented",
		"13": "Internal", "14": "Unavailable", "16": "Unauthenticated"}
	if n, ok := names[code]; ok {
		return code + " " + n
	}
	return code
}
