// Package checkedfilestorage is contrib's file_storage extension with a check of its files at start: a file that
// cannot be read whole (cut short, garbled pages) is moved aside and what can be read of it is copied into a fresh
// file, so that the collector starts, replays every readable queued request, and says once, with the file name, how
// many were lost. Configuration and files are file_storage's own.
package checkedfilestorage // import "github.com/otelcol-apm/otelcol-apm/extension/checkedfilestorage"

import (
	"context"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/otelcol-apm/otelcol-apm/extension/checkedfilestorage/internal/metadata"
)

var fileStorage = filestorage.NewFactory()

// NewFactory returns the factory of checked_file_storage; its configuration is file_storage's.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, fileStorage.CreateDefaultConfig, create, metadata.ExtensionStability)
}

func create(ctx context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	inner, err := fileStorage.Create(ctx, extension.Settings{
		ID:                component.NewIDWithName(fileStorage.Type(), set.ID.Name()),
		TelemetrySettings: set.TelemetrySettings,
		BuildInfo:         set.BuildInfo,
	}, cfg)
	if err != nil {
		return nil, err
	}
	return &checkedStorage{
		Extension: inner.(storage.Extension),
		directory: cfg.(*filestorage.Config).Directory,
		logger:    set.Logger,
	}, nil
}
