package routelatencyprocessor // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/route"
)

// Config is the routelatency processor's configuration.
type Config struct {
	// Routes is the route resolution shared with the routelatency connector.
	Routes route.Config `mapstructure:"routes"`
	// RenameSpans renames request spans named after a raw path ("GET /items/8812", "/items/8812", "GET") to
	// "METHOD route", so that backends that group by span name see one group per route.
	RenameSpans bool `mapstructure:"rename_spans"`
	// Slow tags request spans slower than their route's threshold.
	Slow SlowConfig `mapstructure:"slow"`
	// RejectInvalidUTF8 refuses a whole request (a permanent error: gRPC InvalidArgument, HTTP 400) when any of its
	// strings is not UTF-8, before anything of it goes on; off, such strings pass as they came.
	RejectInvalidUTF8 bool `mapstructure:"reject_invalid_utf8"`
	// Limits bounds the attributes every span carries onwards (off by default).
	Limits LimitsConfig `mapstructure:"limits"`
	_      struct{}
}

// SlowConfig sets the thresholds above which a request span gets Attribute = true.
type SlowConfig struct {
	// Attribute is the boolean span attribute written on slow spans.
	Attribute string `mapstructure:"attribute"`
	// Default applies to routes without their own threshold; 0 tags nothing.
	Default time.Duration `mapstructure:"default"`
	// Routes maps a route template to its own threshold.
	Routes map[string]time.Duration `mapstructure:"routes"`
}

var _ component.Config = (*Config)(nil)

// Validate names the key at fault.
func (c *Config) Validate() error {
	errs := []error{c.Routes.Validate(), c.Limits.validate()}
	if c.Slow.Attribute == "" {
		errs = append(errs, errors.New("slow.attribute: must not be empty"))
	}
	if c.Slow.Default < 0 {
		errs = append(errs, fmt.Errorf("slow.default: must not be negative, got %s", c.Slow.Default))
	}
	for r, d := range c.Slow.Routes {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("slow.routes[%q]: threshold must be positive, got %s", r, d))
		}
	}
	return errors.Join(errs...)
}

// enabled reports whether any threshold is set.
func (s *SlowConfig) enabled() bool {
	return s.Default > 0 || len(s.Routes) > 0
}

// threshold returns the route's threshold, 0 for none.
func (s *SlowConfig) threshold(route string) time.Duration {
	if d, ok := s.Routes[route]; ok {
		return d
	}
	return s.Default
}
