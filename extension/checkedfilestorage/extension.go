package checkedfilestorage // import "github.com/otelcol-apm/otelcol-apm/extension/checkedfilestorage"

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"

	"github.com/otelcol-apm/otelcol-apm/extension/checkedfilestorage/internal/salvage"
)

type checkedStorage struct {
	storage.Extension
	directory string
	logger    *zap.Logger
}

// Start repairs the directory's files before file_storage opens any: extensions start before the exporters that
// ask for their queue's client.
func (s *checkedStorage) Start(ctx context.Context, host component.Host) error {
	s.repairDirectory(time.Now())
	return s.Extension.Start(ctx, host)
}

func (s *checkedStorage) repairDirectory(now time.Time) {
	entries, err := os.ReadDir(s.directory)
	if err != nil {
		return // file_storage reports a directory it cannot use
	}
	for _, e := range entries {
		name := e.Name()
		// Skip what is not a client's database: compaction's temporary files, files already moved aside.
		if !e.Type().IsRegular() || strings.HasPrefix(name, "tempdb") || strings.Contains(name, ".") {
			continue
		}
		path := filepath.Join(s.directory, name)
		r, err := salvage.Repair(path, now)
		switch {
		case err != nil:
			s.logger.Error("Storage file is damaged and could not be repaired; file_storage will fail on it",
				zap.String("file", path), zap.NamedError("damage", r.Damage), zap.Error(err))
		case r.Damage != nil:
			s.logger.Error("Storage file was damaged: moved aside, readable data copied into a fresh file",
				zap.String("file", path), zap.String("moved_to", r.MovedTo), zap.NamedError("damage", r.Damage),
				zap.Int("queued_requests", r.QueueRequests), zap.Int("salvaged_requests", r.QueueRequestsSalvaged),
				zap.Int("unreadable_requests", r.Unreadable()), zap.Int64("salvaged_items", r.QueueItemsSalvaged),
				zap.Int("salvaged_keys", r.KeysSalvaged))
		}
	}
}
