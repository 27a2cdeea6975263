// Command shopapi is a small HTTP service with FastAPI-like routes, instrumented with the OpenTelemetry Go SDK and
// otelhttp, that exports its spans over OTLP/gRPC. The end-to-end suites and `make demo` drive it.
//
// Configuration is the SDK's standard environment: OTEL_EXPORTER_OTLP_ENDPOINT (e.g. http://127.0.0.1:4317),
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=development. LISTEN_ADDR sets the
// service's own address (default 127.0.0.1:8000), SLOW_DELAY the /reports/slow latency (default 600ms),
// DOWNSTREAM_URL the service GET /orders/{order_id} calls (e.g. another instance, http://127.0.0.1:8001; none by
// default). Its orders live in an in-memory SQLite database queried through otelsql. Failed checkouts record an
// exception with its stack trace, of the kinds CHECKOUT_FAILURES names in turn (declined, timeout, fraud; default
// declined,timeout); GET /users/{user_id}/orders records a handled one.
// LATENCY=realistic (what `make demo` sets) gives every route a lognormal latency, a slowdown of the item reads for
// 30 s every 3 minutes, and checkouts that fail 8 % of the time instead of always; the test suites leave it unset
// and get fixed answers.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	exporter, err := otlptracegrpc.New(ctx)
	if err != nil {
		return fmt.Errorf("OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(200*time.Millisecond), sdktrace.WithMaxQueueSize(65536)),
	)
	otel.SetTracerProvider(provider)

	slow := 600 * time.Millisecond
	if v := os.Getenv("SLOW_DELAY"); v != "" {
		if slow, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("SLOW_DELAY: %w", err)
		}
	}
	addr := os.Getenv("LISTEN_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8000"
	}
	db, err := openShop(ctx)
	if err != nil {
		return fmt.Errorf("shop database: %w", err)
	}
	defer db.Close()
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := routes(slow, os.Getenv("LATENCY") == "realistic")
	orders := orderHandler(db, os.Getenv("DOWNSTREAM_URL"))
	mux.HandleFunc("GET /orders/{order_id}", func(w http.ResponseWriter, r *http.Request) {
		trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", "/orders/{order_id}"))
		orders(w, r)
	})
	server := &http.Server{Handler: otelhttp.NewHandler(mux, "shopapi"), ReadHeaderTimeout: 5 * time.Second}
	log.Printf("shopapi listening on %s", listener.Addr())
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = server.Shutdown(shutdownCtx)
	}()
	if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	// Flush every span of the requests served before the stop.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return provider.Shutdown(shutdownCtx)
}

// PaymentDeclinedError, GatewayTimeoutError and FraudSuspectedError are the ways a checkout fails; the message of
// the first carries a customer's email (which the gateway masks).
type PaymentDeclinedError struct{ Card, Email string }

func (e *PaymentDeclinedError) Error() string {
	return fmt.Sprintf("card %s declined for customer %s", e.Card, e.Email)
}

type GatewayTimeoutError struct{ After time.Duration }

func (e *GatewayTimeoutError) Error() string {
	return fmt.Sprintf("payment gateway timed out after %s", e.After)
}

type FraudSuspectedError struct{ Score int }

func (e *FraudSuspectedError) Error() string {
	return fmt.Sprintf("order held: fraud score %d", e.Score)
}

// RecommendationsUnavailableError is handled: the orders are served without recommendations.
type RecommendationsUnavailableError struct{ User string }

func (e *RecommendationsUnavailableError) Error() string {
	return fmt.Sprintf("recommendations unavailable for user %s", e.User)
}

// checkoutFailures are CHECKOUT_FAILURES (comma-separated: declined, timeout, fraud; default declined,timeout),
// taken in turn.
func checkoutFailures() []func() error {
	kinds := map[string]func() error{
		"declined": func() error {
			return &PaymentDeclinedError{Card: fmt.Sprintf("%04d", 1000+rand.IntN(9000)), Email: "alice@example.com"}
		},
		"timeout": func() error { return &GatewayTimeoutError{After: time.Duration(5+rand.IntN(30)) * time.Second} },
		"fraud":   func() error { return &FraudSuspectedError{Score: 80 + rand.IntN(20)} },
	}
	names := os.Getenv("CHECKOUT_FAILURES")
	if names == "" {
		names = "declined,timeout"
	}
	var out []func() error
	for _, n := range strings.Split(names, ",") {
		if f, ok := kinds[strings.TrimSpace(n)]; ok {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		log.Fatalf("CHECKOUT_FAILURES=%q names none of declined, timeout, fraud", names)
	}
	return out
}

// routes mirrors a FastAPI app: matched routes report http.route (as FastAPI's instrumentation does); requests that
// match nothing are 404s whose spans carry only the raw path.
func routes(slow time.Duration, realistic bool) *http.ServeMux {
	mux := http.NewServeMux()
	started := time.Now()
	// wait sleeps a lognormal time around median when realistic; item reads slow down 3x for 30 s every 3 minutes.
	wait := func(route string, median time.Duration, sigma float64) {
		if !realistic {
			return
		}
		d := time.Duration(float64(median) * math.Exp(sigma*rand.NormFloat64()))
		if route == "/items/{item_id}" && time.Since(started)%(3*time.Minute) > 150*time.Second {
			d *= 3
		}
		time.Sleep(d)
	}
	handle := func(pattern, route string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("http.route", route))
			h(w, r)
		})
	}
	handle("GET /items/{item_id}", "/items/{item_id}", func(w http.ResponseWriter, r *http.Request) {
		wait("/items/{item_id}", 18*time.Millisecond, 0.5)
		fmt.Fprintf(w, `{"item_id": %q}`, r.PathValue("item_id"))
	})
	handle("GET /users/{user_id}/orders", "/users/{user_id}/orders", func(w http.ResponseWriter, r *http.Request) {
		wait("/users/{user_id}/orders", 45*time.Millisecond, 0.7)
		// A handled exception: the recommendations are left out, the request succeeds.
		trace.SpanFromContext(r.Context()).RecordError(&RecommendationsUnavailableError{User: r.PathValue("user_id")}, trace.WithStackTrace(true))
		fmt.Fprintf(w, `{"user_id": %q, "orders": []}`, r.PathValue("user_id"))
	})
	failures := checkoutFailures()
	var checkouts atomic.Int64
	handle("POST /checkout", "/checkout", func(w http.ResponseWriter, r *http.Request) {
		wait("/checkout", 120*time.Millisecond, 0.4)
		if realistic && rand.Float64() >= 0.08 {
			fmt.Fprint(w, `{"status": "paid"}`)
			return
		}
		// The failure an SDK records: an exception event with its stack trace, and the span's status.
		err := failures[int(checkouts.Add(1)-1)%len(failures)]()
		span := trace.SpanFromContext(r.Context())
		span.RecordError(err, trace.WithStackTrace(true))
		span.SetStatus(codes.Error, err.Error())
		http.Error(w, `{"detail": "payment backend unavailable"}`, http.StatusInternalServerError)
	})
	handle("GET /reports/slow", "/reports/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(slow)
		fmt.Fprint(w, `{"report": "done"}`)
	})
	return mux // ServeMux answers anything else with 404 and sets no pattern, so the span keeps the raw path only
}
