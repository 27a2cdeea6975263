package softmemorylimit

import (
	"context"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// currentLimit reads the runtime's soft memory limit without changing it.
func currentLimit() int64 { return debug.SetMemoryLimit(-1) }

func noEnv(string) (string, bool) { return "", false }

func TestStartSetsAShareOfTheLimitAndShutdownPutsThePreviousBack(t *testing.T) {
	before := debug.SetMemoryLimit(math.MaxInt64)
	defer debug.SetMemoryLimit(before)

	core, logs := observer.New(zap.InfoLevel)
	e := newSoftLimit(&Config{LimitMiB: 512, Percentage: 80}, zap.New(core), noEnv)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	assert.Equal(t, int64(512<<20)*80/100, currentLimit(), "409.6 MiB")
	require.Equal(t, 1, logs.FilterField(zap.Int64("soft_limit_mib", 409)).Len(), logs.All())

	require.NoError(t, e.Shutdown(context.Background()))
	assert.Equal(t, int64(math.MaxInt64), currentLimit())
}

func TestAGivenGOMEMLIMITIsKept(t *testing.T) {
	before := debug.SetMemoryLimit(300 << 20) // as the runtime would have read GOMEMLIMIT=300MiB
	defer debug.SetMemoryLimit(before)

	core, logs := observer.New(zap.InfoLevel)
	env := func(name string) (string, bool) {
		if name == "GOMEMLIMIT" {
			return "300MiB", true
		}
		return "", false
	}
	e := newSoftLimit(&Config{LimitMiB: 512, Percentage: 80}, zap.New(core), env)
	require.NoError(t, e.Start(context.Background(), componenttest.NewNopHost()))
	assert.Equal(t, int64(300<<20), currentLimit())
	require.Equal(t, 1, logs.FilterField(zap.String("GOMEMLIMIT", "300MiB")).Len(), logs.All())
	require.NoError(t, e.Shutdown(context.Background()))
	assert.Equal(t, int64(300<<20), currentLimit(), "Shutdown changes nothing Start did not")
}
