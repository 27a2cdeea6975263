// Package route turns what a request span says about its HTTP target into a bounded set of route templates.
package route // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Config is the `routes` block shared by the routelatency processor and connector.
type Config struct {
	// Templates are the service's declared routes in FastAPI syntax (`/users/{user_id}/orders/{order_id}`,
	// `/files/{file_path:path}`), tried in order before the built-in id rules.
	Templates []string `mapstructure:"templates"`
	// SpanKinds selects the request spans; others pass through untouched.
	SpanKinds []string `mapstructure:"span_kinds"`
	// OpenAPI lists documents whose paths are declared templates, tried after Templates.
	OpenAPI []OpenAPIDocument `mapstructure:"openapi"`
	// Unmatched is UnmatchedGroup (a 404 or 405 without a route, of a service that declares routes, counts under
	// UnmatchedRoute) or UnmatchedGuess (its raw path is templated by the id rules like any other).
	Unmatched string `mapstructure:"unmatched"`
	// MaxRoutesPerService caps the distinct declared routes per service (http.route, span-name templates, templates,
	// OpenAPI); routes beyond it become OverflowRoute.
	MaxRoutesPerService int `mapstructure:"max_routes_per_service"`
	// MaxGuessedRoutesPerService caps, separately, the routes the id rules make from raw paths, so that no amount of
	// raw-path traffic can displace a declared route.
	MaxGuessedRoutesPerService int `mapstructure:"max_guessed_routes_per_service"`
	// GuessedRouteIdle is how long a guessed route keeps its slot without traffic; a route seen only once keeps it
	// for a tenth of that.
	GuessedRouteIdle time.Duration `mapstructure:"guessed_route_idle"`
	// MaxServices caps the services whose routes are tracked; spans of further services get OverflowRoute.
	MaxServices int `mapstructure:"max_services"`
	// ServiceIdle is how long a service may send nothing before its routes, declared and guessed, are forgotten
	// (they come back with its traffic): services that come and go do not fill the tables.
	ServiceIdle time.Duration `mapstructure:"service_idle"`
	// MaxPathLength truncates longer raw paths (bytes) before templating.
	MaxPathLength int `mapstructure:"max_path_length"`
	_             struct{}
}

// OverflowRoute stands for every route beyond the caps: one series, never a new one per path.
const OverflowRoute = "{overflow}"

// UnmatchedRoute stands for the requests a service answered 404 or 405 without a route of its own: a scanner's
// random paths are one series per method, as Datadog's "GET 404" resource is.
const UnmatchedRoute = "{unmatched}"

// Values of Config.Unmatched.
const (
	UnmatchedGroup = "group"
	UnmatchedGuess = "guess"
)

// DefaultConfig returns the defaults documented in the component README.
func DefaultConfig() Config {
	return Config{
		SpanKinds:                  []string{"SERVER"},
		Unmatched:                  UnmatchedGroup,
		MaxRoutesPerService:        500,
		MaxGuessedRoutesPerService: 100,
		GuessedRouteIdle:           5 * time.Minute,
		MaxServices:                1000,
		ServiceIdle:                15 * time.Minute,
		MaxPathLength:              2048,
	}
}

var spanKindNames = map[string]ptrace.SpanKind{
	"INTERNAL": ptrace.SpanKindInternal,
	"SERVER":   ptrace.SpanKindServer,
	"CLIENT":   ptrace.SpanKindClient,
	"PRODUCER": ptrace.SpanKindProducer,
	"CONSUMER": ptrace.SpanKindConsumer,
}

// Validate reports every invalid key, named as it is written in YAML.
func (c *Config) Validate() error {
	var errs []error
	for i, t := range c.Templates {
		if _, err := parseTemplate(t, false); err != nil {
			errs = append(errs, fmt.Errorf("routes.templates[%d]: %w", i, err))
		}
	}
	if len(c.SpanKinds) == 0 {
		errs = append(errs, errors.New("routes.span_kinds: must name at least one span kind"))
	}
	for i, k := range c.SpanKinds {
		if _, ok := spanKindNames[strings.ToUpper(k)]; !ok {
			errs = append(errs, fmt.Errorf("routes.span_kinds[%d]: unknown span kind %q (want one of SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER)", i, k))
		}
	}
	for i, d := range c.OpenAPI {
		if d.File == "" {
			errs = append(errs, fmt.Errorf("routes.openapi[%d].file: must name an OpenAPI document", i))
			continue
		}
		if _, err := loadOpenAPIPaths(d.File); err != nil {
			errs = append(errs, fmt.Errorf("routes.openapi[%d].file: %s: %w", i, d.File, err))
		}
	}
	if c.Unmatched != UnmatchedGroup && c.Unmatched != UnmatchedGuess {
		errs = append(errs, fmt.Errorf("routes.unmatched: must be %q or %q, got %q", UnmatchedGroup, UnmatchedGuess, c.Unmatched))
	}
	if c.MaxGuessedRoutesPerService < 1 {
		errs = append(errs, fmt.Errorf("routes.max_guessed_routes_per_service: must be at least 1, got %d", c.MaxGuessedRoutesPerService))
	}
	if c.GuessedRouteIdle < time.Second {
		errs = append(errs, fmt.Errorf("routes.guessed_route_idle: must be at least 1s, got %s", c.GuessedRouteIdle))
	}
	if c.MaxRoutesPerService < 1 {
		errs = append(errs, fmt.Errorf("routes.max_routes_per_service: must be at least 1, got %d", c.MaxRoutesPerService))
	}
	if c.ServiceIdle < c.GuessedRouteIdle {
		errs = append(errs, fmt.Errorf("routes.service_idle: must be at least guessed_route_idle (%s), got %s", c.GuessedRouteIdle, c.ServiceIdle))
	}
	if c.MaxServices < 1 {
		errs = append(errs, fmt.Errorf("routes.max_services: must be at least 1, got %d", c.MaxServices))
	}
	if c.MaxPathLength < 16 {
		errs = append(errs, fmt.Errorf("routes.max_path_length: must be at least 16 bytes, got %d", c.MaxPathLength))
	}
	return errors.Join(errs...)
}

// spanKindSet returns the selected kinds as a bitmask indexed by ptrace.SpanKind; Validate has run.
func (c *Config) spanKindSet() uint8 {
	var set uint8
	for _, k := range c.SpanKinds {
		set |= 1 << spanKindNames[strings.ToUpper(k)]
	}
	return set
}
