package routelatencyconnector // import "github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector"

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"
)

// openHistory connects the dashboard's history to dashboard.storage and reads back what it holds. A history that
// does not decode is moved aside (its index under dashboard.UnreadableIndexKey) with one log line, and the page
// starts empty: never a reason not to start.
func (c *routeConnector) openHistory(ctx context.Context, host component.Host) error {
	id := *c.cfg.Dashboard.Storage
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return fmt.Errorf("dashboard.storage: no extension %q in the service's extensions", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return fmt.Errorf("dashboard.storage: %q is not a storage extension", id)
	}
	client, err := se.GetClient(ctx, component.KindConnector, c.id, "dashboard")
	if err != nil {
		return fmt.Errorf("dashboard.storage: %w", err)
	}
	c.historyStore = client
	get := func(key string) ([]byte, error) { return client.Get(ctx, key) }
	slices, err := c.history.Restore(get)
	if err == nil {
		err = c.versions.Restore(get)
	}
	switch {
	case errors.Is(err, dashboard.ErrUnreadable):
		index, _ := client.Get(ctx, dashboard.IndexKey)
		aside := client.Batch(ctx, storage.SetOperation(dashboard.UnreadableIndexKey, index), storage.DeleteOperation(dashboard.IndexKey))
		c.logger.Warn("The dashboard's persisted history is unreadable: moved aside, the page starts empty",
			zap.String("storage", id.String()), zap.Error(err), zap.NamedError("moving_aside", aside))
	case err != nil:
		return fmt.Errorf("dashboard.storage: reading the history: %w", err)
	default:
		c.logger.Info("Dashboard history read back", zap.String("storage", id.String()), zap.Int("slices", slices))
	}
	return nil
}

// persistHistory writes what the last flush changed in the history (nothing without dashboard.storage).
func (c *routeConnector) persistHistory(ctx context.Context) error {
	if c.historyStore == nil {
		return nil
	}
	changes := append(c.history.Changes(), c.versions.Changes()...)
	if len(changes) == 0 {
		return nil
	}
	ops := make([]*storage.Operation, len(changes))
	for i, ch := range changes {
		if ch.Value == nil {
			ops[i] = storage.DeleteOperation(ch.Key)
		} else {
			ops[i] = storage.SetOperation(ch.Key, ch.Value)
		}
	}
	if err := c.historyStore.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("dashboard.storage: %d history records not written: %w", len(ops), err)
	}
	return nil
}
