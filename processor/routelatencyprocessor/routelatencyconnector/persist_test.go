package routelatencyconnector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/internal/dashboard"
	"github.com/otelcol-apm/otelcol-apm/processor/routelatencyprocessor/routelatencyconnector/internal/metadata"
)

// memoryStorage is a storage extension holding its records in memory, shared by the clients it hands out.
type memoryStorage struct {
	component.StartFunc
	component.ShutdownFunc
	mu      sync.Mutex
	records map[string][]byte
}

func (m *memoryStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return m, nil
}

func (m *memoryStorage) Get(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records[key], nil
}

func (m *memoryStorage) Set(_ context.Context, key string, value []byte) error {
	return m.Batch(context.Background(), storage.SetOperation(key, value))
}

func (m *memoryStorage) Delete(_ context.Context, key string) error {
	return m.Batch(context.Background(), storage.DeleteOperation(key))
}

func (m *memoryStorage) Batch(_ context.Context, ops ...*storage.Operation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		switch op.Type {
		case storage.Set:
			m.records[op.Key] = append([]byte(nil), op.Value...)
		case storage.Delete:
			delete(m.records, op.Key)
		case storage.Get:
			op.Value = m.records[op.Key]
		}
	}
	return nil
}

func (m *memoryStorage) Close(context.Context) error { return nil }

type storageHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h storageHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

var historyStorageID = component.MustNewIDWithName("file_storage", "dashboard")

// startWithStorage starts a connector whose dashboard keeps its history in store, on the given clock.
func startWithStorage(t *testing.T, store *memoryStorage, clock *fakeClock, logger *zap.Logger) *routeConnector {
	cfg := createDefaultConfig().(*Config)
	cfg.Breakdown.Enabled = false
	cfg.Dashboard.Endpoint = "127.0.0.1:0"
	cfg.Dashboard.Storage = &historyStorageID
	require.NoError(t, cfg.Validate())
	set := connectortest.NewNopSettings(metadata.Type)
	set.Logger = logger
	c, err := newRouteConnector(set, cfg, &consumertest.MetricsSink{}, clock)
	require.NoError(t, err)
	host := storageHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{historyStorageID: store}}
	require.NoError(t, c.Start(context.Background(), host))
	return c
}

func routeRequests(t *testing.T, c *routeConnector, window string) uint64 {
	rec := httptest.NewRecorder()
	c.dashboard.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/routes?window="+window, nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var body struct{ Routes []struct{ Requests uint64 } }
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	n := uint64(0)
	for _, r := range body.Routes {
		n += r.Requests
	}
	return n
}

// A clean shutdown persists the last flush: the next start shows every request, in every window; the 1 d and
// 7 d windows answer from the roll-ups.
func TestHistorySurvivesARestart(t *testing.T) {
	store := &memoryStorage{records: map[string][]byte{}}
	clock := &fakeClock{now: t0, ticks: make(chan time.Time)}
	c := startWithStorage(t, store, clock, zap.NewNop())
	for i := range 50 {
		require.NoError(t, c.ConsumeTraces(context.Background(), traces(span{service: "shop", name: "GET /items/{item_id}", duration: 10 * time.Millisecond,
			attrs: get("/items/1", 200)})))
		if i == 24 {
			clock.set(t0.Add(15 * time.Second))
			require.NoError(t, c.flush(context.Background()))
		}
	}
	clock.set(t0.Add(20 * time.Second))
	require.NoError(t, c.Shutdown(context.Background()))

	restarted := startWithStorage(t, store, clock, zap.NewNop())
	t.Cleanup(func() { require.NoError(t, restarted.Shutdown(context.Background())) })
	for _, w := range []string{"5m", "1h", "1d", "7d"} {
		assert.Equal(t, uint64(50), routeRequests(t, restarted, w), "window %s", w)
	}
}

// A garbled history starts the page empty, with one warning, and the gateway starts.
func TestGarbledHistoryStartsEmptyWithOneLogLine(t *testing.T) {
	store := &memoryStorage{records: map[string][]byte{dashboard.IndexKey: []byte{1, 0xff}}}
	core, logs := observer.New(zap.WarnLevel)
	c := startWithStorage(t, store, &fakeClock{now: t0, ticks: make(chan time.Time)}, zap.New(core))
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	assert.Zero(t, routeRequests(t, c, "1h"))
	require.Equal(t, 1, logs.Len(), "%v", logs.All())
	assert.Contains(t, logs.All()[0].Message, "unreadable")
	assert.Equal(t, []byte{1, 0xff}, store.records[dashboard.UnreadableIndexKey], "moved aside")
	assert.Nil(t, store.records[dashboard.IndexKey])
}

// A week of traffic on a driven clock, a flush every 10 minutes for a week and every 15 s over the last hour, ten
// routes: the records stay one per slice of each tier (the rings overwrite them in place), and their bytes within
// routes x slices x the per-slice bound the README states.
func TestPersistedHistoryStaysWithinItsDiskBound(t *testing.T) {
	store := &memoryStorage{records: map[string][]byte{}}
	start := t0.Add(-7 * 24 * time.Hour)
	clock := &fakeClock{now: start, ticks: make(chan time.Time)}
	c := startWithStorage(t, store, clock, zap.NewNop())
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	batch := func() {
		var spans []span
		for r := range 10 {
			for i := range 20 {
				spans = append(spans, span{service: "shop", name: "GET", duration: time.Duration(1+i*i) * time.Millisecond,
					attrs: map[string]any{"http.request.method": "GET", "http.route": fmt.Sprintf("/r%d", r), "url.path": "/r", "http.response.status_code": int64(200)}})
			}
		}
		require.NoError(t, c.ConsumeTraces(context.Background(), traces(spans...)))
		require.NoError(t, c.flush(context.Background()))
	}
	for at := start; at.Before(t0.Add(-time.Hour)); at = at.Add(10 * time.Minute) {
		clock.set(at)
		batch()
	}
	for at := t0.Add(-time.Hour); at.Before(t0); at = at.Add(15 * time.Second) {
		clock.set(at)
		batch()
	}
	slices := 120 + 144 + 168
	bytes := 0
	for _, v := range store.records {
		bytes += len(v)
	}
	t.Logf("%d records, %d bytes (%.0f a slice record)", len(store.records), bytes, float64(bytes)/float64(len(store.records)))
	assert.LessOrEqual(t, len(store.records), 10*slices+2, "one record per slice of each ring, the index and the versions")
	assert.Less(t, bytes, 10*slices*perSliceRecordBound)
}

// perSliceRecordBound is what the README states one persisted slice takes at most: a full sketch (1,024 bins)
// encoded, five exemplars and the counts.
const perSliceRecordBound = 10 << 10
