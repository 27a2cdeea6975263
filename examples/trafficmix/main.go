// Command trafficmix sends a steady, realistic mix of requests to an instance of shopapi, so that Jaeger, the
// route metrics and the route dashboard fill within seconds: mostly fast item and order reads, some 404s, failing
// checkouts and a few slow reports.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	target := flag.String("target", "http://127.0.0.1:8000", "base URL of the shopapi instance")
	rate := flag.Int("rate", 20, "requests per second")
	duration := flag.Duration("duration", 10*time.Minute, "how long to send (bounded: the mix stops by itself)")
	flag.Parse()

	// Ctrl-C ends the mix early, as a normal end: `make demo` stops without an error.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	ticker := time.NewTicker(time.Second / time.Duration(max(*rate, 1)))
	defer ticker.Stop()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			log.Printf("sent %d requests", sent)
			return
		case <-ticker.C:
		}
		method, path := pick()
		go func() {
			req, _ := http.NewRequest(method, *target+path, strings.NewReader(""))
			resp, err := client.Do(req)
			if err != nil {
				log.Printf("%s %s: %v", method, path, err)
				return
			}
			resp.Body.Close()
		}()
		sent++
		if sent%(*rate*10) == 0 {
			log.Printf("sent %d requests", sent)
		}
	}
}

func pick() (string, string) {
	switch p := rand.Float64(); {
	case p < 0.45:
		return "GET", fmt.Sprintf("/items/%d", rand.IntN(10000))
	case p < 0.55:
		return "GET", fmt.Sprintf("/orders/%d", 1+rand.IntN(100)) // seven queries (an N+1 loop) and a downstream call
	case p < 0.80:
		return "GET", fmt.Sprintf("/users/%d/orders", rand.IntN(500))
	case p < 0.90:
		return "GET", fmt.Sprintf("/missing/%d", rand.IntN(100000))
	case p < 0.97:
		return "POST", "/checkout"
	default:
		return "GET", "/reports/slow"
	}
}
