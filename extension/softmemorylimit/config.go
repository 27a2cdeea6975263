package softmemorylimit // import "github.com/otelcol-apm/otelcol-apm/extension/softmemorylimit"

import (
	"errors"
	"fmt"
)

// Config says what the Go runtime's soft memory limit is a share of.
type Config struct {
	// LimitMiB is the memory_limiter's limit_mib (set both from one variable).
	LimitMiB uint32 `mapstructure:"limit_mib"`
	// Percentage of LimitMiB that the Go runtime gets as its soft limit: it collects harder as the heap nears it,
	// before the memory_limiter refuses data.
	Percentage uint32 `mapstructure:"percentage"`
}

// defaultPercentage is the memory_limiter README's advice: GOMEMLIMIT at 80 % of the hard limit.
const defaultPercentage = 80

// Validate checks that the limit is given and the share is one.
func (c *Config) Validate() error {
	var errs []error
	if c.LimitMiB == 0 {
		errs = append(errs, errors.New("limit_mib: must be set (the memory_limiter's limit_mib)"))
	}
	if c.Percentage == 0 || c.Percentage > 100 {
		errs = append(errs, fmt.Errorf("percentage: %d is not in 1-100", c.Percentage))
	}
	return errors.Join(errs...)
}

// softLimit is the soft limit in bytes.
func (c *Config) softLimit() int64 {
	return (int64(c.LimitMiB) << 20) * int64(c.Percentage) / 100
}
