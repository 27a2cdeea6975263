package softmemorylimit // import "github.com/otelcol-apm/otelcol-apm/extension/softmemorylimit"

import (
	"context"
	"runtime/debug"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"
)

// softLimit applies the limit at Start (extensions start before the pipelines: before data comes in) and puts the
// runtime's previous one back at Shutdown.
type softLimit struct {
	cfg       *Config
	logger    *zap.Logger
	lookupEnv func(string) (string, bool)
	// previous is the runtime's limit before Start; set says that Start changed it.
	previous int64
	set      bool
}

func newSoftLimit(cfg *Config, logger *zap.Logger, lookupEnv func(string) (string, bool)) *softLimit {
	return &softLimit{cfg: cfg, logger: logger, lookupEnv: lookupEnv}
}

func (s *softLimit) Start(context.Context, component.Host) error {
	if v, ok := s.lookupEnv("GOMEMLIMIT"); ok {
		s.logger.Info("GOMEMLIMIT is set: the Go runtime's soft memory limit is left as it gives",
			zap.String("GOMEMLIMIT", v), zap.Uint32("limit_mib", s.cfg.LimitMiB))
		return nil
	}
	limit := s.cfg.softLimit()
	s.previous, s.set = debug.SetMemoryLimit(limit), true
	s.logger.Info("Go runtime soft memory limit set from the memory limit (GOMEMLIMIT is not set)",
		zap.Int64("soft_limit_mib", limit>>20), zap.Uint32("limit_mib", s.cfg.LimitMiB),
		zap.Uint32("percentage", s.cfg.Percentage))
	return nil
}

func (s *softLimit) Shutdown(context.Context) error {
	if s.set {
		debug.SetMemoryLimit(s.previous)
		s.set = false
	}
	return nil
}
