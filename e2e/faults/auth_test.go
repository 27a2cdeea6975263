package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// TestFault5Auth: no token, a wrong token, plaintext to the TLS port and an untrusted server certificate are all
// rejected, over gRPC and HTTP; the right token over TLS is accepted and its spans delivered.
func TestFault5Auth(t *testing.T) {
	sink := startSeqSink(t, 0)
	col := startGateway(t, sink)
	body := mustMarshal(t, loadTraces(1, 10))
	good := "Bearer " + col.Creds.Token
	verified, unverified := col.Creds.ClientTLS(), &tls.Config{MinVersion: tls.VersionTLS12} // system roots only

	grpcCall := func(creds credentials.TransportCredentials, authorization string) error {
		conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if authorization != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", authorization)
		}
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			return err
		}
		_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, req)
		return err
	}
	httpCall := func(scheme string, tlsConfig *tls.Config, authorization string) (int, error) {
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
		req, _ := http.NewRequest(http.MethodPost, scheme+"://"+col.OTLPHTTP+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		if authorization != "" {
			req.Header.Set("Authorization", authorization)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	grpcCases := []struct {
		name          string
		creds         credentials.TransportCredentials
		authorization string
		want          codes.Code
	}{
		{"no token", credentials.NewTLS(verified), "", codes.Unauthenticated},
		{"wrong token", credentials.NewTLS(verified), "Bearer wrong-" + col.Creds.Token, codes.Unauthenticated},
		{"plaintext to the TLS port", insecure.NewCredentials(), good, codes.Unavailable},
		{"untrusted server certificate", credentials.NewTLS(unverified), good, codes.Unavailable},
		{"right token over TLS", credentials.NewTLS(verified), good, codes.OK},
	}
	for _, c := range grpcCases {
		err := grpcCall(c.creds, c.authorization)
		got := status.Code(err)
		figures(t, "5 auth", "gRPC %s: %s", c.name, got)
		if got != c.want {
			t.Errorf("gRPC %s: got %s (%v), want %s", c.name, got, err, c.want)
		}
	}

	httpCases := []struct {
		name, scheme  string
		tls           *tls.Config
		authorization string
		want          int // 0: the connection fails
	}{
		{"no token", "https", verified, "", http.StatusUnauthorized},
		{"wrong token", "https", verified, "Bearer wrong-" + col.Creds.Token, http.StatusUnauthorized},
		{"plaintext to the TLS port", "http", nil, good, http.StatusBadRequest},
		{"untrusted server certificate", "https", unverified, good, 0},
		{"right token over TLS", "https", verified, good, http.StatusOK},
	}
	for _, c := range httpCases {
		code, err := httpCall(c.scheme, c.tls, c.authorization)
		figures(t, "5 auth", "HTTP %s: %d %v", c.name, code, err)
		if code != c.want {
			t.Errorf("HTTP %s: got %d (%v), want %d", c.name, code, err, c.want)
		}
	}

	// Only the two accepted requests (the same 10 spans twice) reach the backend.
	waitDelivered(t, sink, seqs(1, 10), 15*time.Second)
	time.Sleep(time.Second) // a wrongly accepted request would have arrived by now
	d := sink.delivery(seqs(1, 10))
	figures(t, "5 auth", "spans at the backend: %d distinct, %d duplicates (2 accepted requests of 10 spans)", d.Delivered, d.Duplicates)
	if d.Lost > 0 || d.Duplicates != 10 {
		t.Errorf("the backend got %d distinct spans and %d duplicates, want 10 and 10: a rejected request got through or an accepted one was lost", d.Delivered, d.Duplicates)
	}
}
