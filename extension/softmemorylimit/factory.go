// Package softmemorylimit sets the Go runtime's soft memory limit (what GOMEMLIMIT sets) to a share of the
// memory_limiter's limit when GOMEMLIMIT is not given, so that one setting sizes both: without a soft limit the
// heap grows to the limiter's limit, which refuses data before the garbage collector works harder; with a soft
// limit fixed apart (an image's GOMEMLIMIT), raising the limiter's leaves the collector collecting hard far below it.
// An explicit GOMEMLIMIT (including "off") is kept as it is.
package softmemorylimit // import "github.com/otelcol-apm/otelcol-apm/extension/softmemorylimit"

import (
	"context"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/otelcol-apm/otelcol-apm/extension/softmemorylimit/internal/metadata"
)

// NewFactory returns the factory of soft_memory_limit.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func createDefaultConfig() component.Config {
	return &Config{Percentage: defaultPercentage}
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newSoftLimit(cfg.(*Config), set.Logger, os.LookupEnv), nil
}
