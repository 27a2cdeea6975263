package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
)

// Peers finds the other replicas of the fleet: a fixed list of host:port, and/or a DNS name (a Kubernetes headless
// Service) whose addresses are looked up on every fleet request, so that replicas that come and go are followed.
// A replica may list itself (a headless Service does): it recognises its own instance id and counts itself once.
type Peers struct {
	Static   []string // host:port of each replica's dashboard
	DNSName  string   // name whose A/AAAA records are the replicas
	DNSPort  string   // the dashboards' port on those addresses
	Token    string   // the peers' dashboard bearer token (the fleet shares one configuration)
	Timeout  time.Duration
	resolver *net.Resolver
	client   *http.Client
}

func (p *Peers) enabled() bool { return p != nil && (len(p.Static) > 0 || p.DNSName != "") }

func (p *Peers) addresses(ctx context.Context) ([]string, error) {
	addrs := append([]string(nil), p.Static...)
	if p.DNSName != "" {
		ips, err := p.resolver.LookupHost(ctx, p.DNSName)
		if err != nil {
			return addrs, fmt.Errorf("look up peers %q: %w", p.DNSName, err)
		}
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip, p.DNSPort))
		}
	}
	sort.Strings(addrs)
	return addrs, nil
}

// PeerStatus is how one peer answered a fleet request.
type PeerStatus struct {
	Address  string `json:"address"`
	Instance string `json:"instance,omitempty"`
	// State is "ok", "self" (this replica, counted from memory) or "missing" (no answer: its routes are not in
	// the figures, which the page says).
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// sketchesJSON is GET /api/sketches: a replica's routes merged over a window, sketches in DDSketch's binary
// encoding (base64 in JSON), so that peers merge them exactly instead of averaging percentiles.
type sketchesJSON struct {
	Instance       string            `json:"instance"`
	Window         string            `json:"window"`
	CoveredSeconds float64           `json:"covered_seconds"`
	Routes         []routeSketchJSON `json:"routes"`
}

type routeSketchJSON struct {
	Service     string  `json:"service"`
	Environment string  `json:"environment"`
	Method      string  `json:"method"`
	Route       string  `json:"route"`
	Requests    uint64  `json:"requests"`
	Errors      uint64  `json:"errors"`
	SumSeconds  float64 `json:"sum_seconds"`
	Sketch      []byte  `json:"sketch"`
}

func encodeWindows(instance, window string, routes []RouteWindow, covered time.Duration) sketchesJSON {
	out := sketchesJSON{Instance: instance, Window: window, CoveredSeconds: covered.Seconds(), Routes: []routeSketchJSON{}}
	for _, rw := range routes {
		var b []byte
		rw.Sketch.Encode(&b, false)
		out.Routes = append(out.Routes, routeSketchJSON{Service: rw.Service, Environment: rw.Environment, Method: rw.Method,
			Route: rw.Route, Requests: rw.Requests, Errors: rw.Errors, SumSeconds: rw.SumSeconds, Sketch: b})
	}
	return out
}

// fleetWindows merges this replica's windows with every peer's. Peers are asked concurrently, each bounded by the
// timeout; a peer that does not answer is reported missing, never silently left out.
func (p *Peers) fleetWindows(ctx context.Context, self string, window string, local []RouteWindow, covered time.Duration) ([]RouteWindow, time.Duration, []PeerStatus) {
	merged := map[RouteKey]*RouteWindow{}
	add := func(rw RouteWindow) {
		m, ok := merged[rw.RouteKey]
		if !ok {
			m = &RouteWindow{RouteKey: rw.RouteKey, Sketch: newSliceSketch()}
			merged[rw.RouteKey] = m
		}
		m.Requests += rw.Requests
		m.Errors += rw.Errors
		m.SumSeconds += rw.SumSeconds
		_ = m.Sketch.MergeWith(rw.Sketch) // same 1 % mapping everywhere
	}
	for _, rw := range local {
		add(rw)
	}
	addrs, lookupErr := p.addresses(ctx)
	statuses := make([]PeerStatus, len(addrs))
	answers := make([]*sketchesJSON, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = PeerStatus{Address: addr, State: "ok"}
			a, err := p.fetch(ctx, addr, window)
			if err != nil {
				statuses[i].State, statuses[i].Error = "missing", err.Error()
				return
			}
			statuses[i].Instance = a.Instance
			if a.Instance == self {
				statuses[i].State = "self"
				return
			}
			answers[i] = a
		}()
	}
	wg.Wait()
	if lookupErr != nil {
		statuses = append(statuses, PeerStatus{Address: p.DNSName, State: "missing", Error: lookupErr.Error()})
	}
	for i, a := range answers {
		if a == nil {
			continue
		}
		for _, r := range a.Routes {
			rw := RouteWindow{RouteKey: RouteKey{Service: r.Service, Environment: r.Environment, Method: r.Method, Route: r.Route},
				Requests: r.Requests, Errors: r.Errors, SumSeconds: r.SumSeconds, Sketch: newSliceSketch()}
			if err := rw.Sketch.DecodeAndMergeWith(r.Sketch); err != nil {
				statuses[i].State, statuses[i].Error = "missing", "undecodable sketch: "+err.Error()
				break
			}
			add(rw)
		}
		covered = max(covered, time.Duration(a.CoveredSeconds*float64(time.Second)))
	}
	out := make([]RouteWindow, 0, len(merged))
	for _, m := range merged {
		out = append(out, *m)
	}
	return out, covered, statuses
}

func (p *Peers) fetch(ctx context.Context, addr, window string) (*sketchesJSON, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/api/sketches?"+url.Values{"window": {window}}.Encode(), nil)
	if err != nil {
		return nil, err
	}
	if p.Token != "" {
		req.Header.Set("Authorization", "Bearer "+p.Token)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	var a sketchesJSON
	if err := json.NewDecoder(http.MaxBytesReader(nil, res.Body, 64<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return &a, nil
}

// NewPeers prepares the fleet lookup; peers are host:port entries, dnsName is "name:port" or empty.
func NewPeers(static []string, dnsName, token string) *Peers {
	p := &Peers{Static: static, Token: token, Timeout: 2 * time.Second, resolver: net.DefaultResolver,
		client: &http.Client{Timeout: 5 * time.Second}}
	if dnsName != "" {
		host, port, _ := net.SplitHostPort(dnsName) // validated with the configuration
		p.DNSName, p.DNSPort = host, port
	}
	return p
}
