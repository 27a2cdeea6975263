package salvage

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata/request"
)

const spansPerRequest = 50

// writeQueue writes a file laid out as an exporter's persistent traces queue holding requests [read, write).
func writeQueue(t *testing.T, read, write uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "exporter_otlp_grpc_jaeger_traces")
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		require.NoError(t, err)
		var bytesSize int64
		for i := read; i < write; i++ {
			v := traceRequest(t, i)
			bytesSize += int64(len(v))
			require.NoError(t, b.Put([]byte(strconv.FormatUint(i, 10)), v))
		}
		items := int64(write-read) * spansPerRequest
		return b.Put(metadataKey, marshalMetadata(items, bytesSize, read, write, nil))
	}))
	require.NoError(t, db.Close())
	return path
}

func traceRequest(t *testing.T, i uint64) []byte {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for j := 0; j < spansPerRequest; j++ {
		s := spans.AppendEmpty()
		s.SetName("GET /items/{item_id}")
		s.Attributes().PutInt("request", int64(i))
		s.Attributes().PutStr("url.path", "/items/"+strconv.Itoa(j))
	}
	// As the queue writes it (collector gate exporter.PersistRequestContext, on since v0.128.0); older queues hold
	// plain OTLP protobuf, which decodes too.
	if i%2 == 0 {
		b, err := request.MarshalTraces(context.Background(), td)
		require.NoError(t, err)
		return b
	}
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	require.NoError(t, err)
	return b
}

// replayable reads the repaired file as the queue does: metadata, then each index in it, decoded.
func replayable(t *testing.T, path string) (requests int, spans int64, itemsSize int64) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoFreelistSync: true})
	require.NoError(t, err, "file_storage opens the repaired file read-write")
	defer db.Close()
	require.NoError(t, db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketName)
		read, write, _, ok := parseMetadata(b.Get(metadataKey))
		require.True(t, ok)
		var meta [8]byte
		copy(meta[:], b.Get(metadataKey)[1:9])
		itemsSize = int64(meta[0]) | int64(meta[1])<<8 | int64(meta[2])<<16 | int64(meta[3])<<24
		for i := read; i < write; i++ {
			v := b.Get([]byte(strconv.FormatUint(i, 10)))
			if v == nil {
				continue
			}
			n, ok := decodedItems("traces", v)
			require.True(t, ok, "every index left in the queue decodes")
			requests++
			spans += n
		}
		return nil
	}))
	return requests, spans, itemsSize
}

func TestIntactFileIsLeftAlone(t *testing.T) {
	path := writeQueue(t, 10, 210)
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	r, err := Repair(path, time.Now())
	require.NoError(t, err)
	assert.NoError(t, r.Damage)
	assert.Empty(t, r.MovedTo)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestTruncatedFileSalvagesWhatItHolds(t *testing.T) {
	path := writeQueue(t, 10, 210)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(path, info.Size()/2))
	require.Error(t, Check(path), "a file cut in half is damaged")

	r, err := Repair(path, time.Now())
	require.NoError(t, err)
	require.Error(t, r.Damage)
	assert.FileExists(t, r.MovedTo)
	assert.Equal(t, 200, r.QueueRequests)
	assert.Greater(t, r.QueueRequestsSalvaged, 0, "the first half of the file is readable")
	assert.Less(t, r.QueueRequestsSalvaged, 200)
	t.Logf("salvaged %d of 200 requests from a file cut to half its size", r.QueueRequestsSalvaged)

	requests, spans, itemsSize := replayable(t, path)
	assert.Equal(t, r.QueueRequestsSalvaged, requests)
	assert.Equal(t, r.QueueItemsSalvaged, spans)
	assert.Equal(t, spans, itemsSize, "the queue's size counts exactly the salvaged spans")
	assert.NoError(t, Check(path))
}

func TestGarbledPagesSalvageTheRest(t *testing.T) {
	for _, at := range []float64{0.3, 0.5, 0.7, 0.95} {
		path := writeQueue(t, 0, 200)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		off := int(float64(len(b))*at) &^ 4095 // a page start: its header
		for i := 0; i < 64; i++ {
			b[off+i] ^= 0xA5
		}
		require.NoError(t, os.WriteFile(path, b, 0o600))

		r, err := Repair(path, time.Now())
		require.NoError(t, err)
		requests, spans, itemsSize := replayable(t, path)
		if r.Damage == nil {
			// The garbled page was not reachable (a free page): nothing was lost.
			requests, _, _ = replayable(t, path)
			assert.Equal(t, 200, requests)
			continue
		}
		t.Logf("garbled page at %.0f%%: %v; salvaged %d of %d", at*100, r.Damage, r.QueueRequestsSalvaged, r.QueueRequests)
		assert.Equal(t, r.QueueRequestsSalvaged, requests)
		assert.Equal(t, spans, itemsSize)
		assert.Greater(t, r.QueueRequestsSalvaged, 0)
	}
}

func TestQueueWithoutReadableMetadataSpansTheIndicesFound(t *testing.T) {
	path := writeQueue(t, 5, 25)
	db, err := bbolt.Open(path, 0o600, nil)
	require.NoError(t, err)
	require.NoError(t, db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketName).Delete(metadataKey) }))
	require.NoError(t, db.Close())

	entries := map[string][]byte{}
	require.NoError(t, readAll(path, func(_, k, v []byte) { entries[string(k)] = bytes.Clone(v) }))
	var r Report
	rewriteQueue(entries, nil, "traces", &r)
	read, write, _, ok := parseMetadata(entries[string(metadataKey)])
	require.True(t, ok)
	assert.Equal(t, uint64(5), read)
	assert.Equal(t, uint64(25), write)
	assert.Equal(t, 20, r.QueueRequestsSalvaged)
	assert.Equal(t, int64(20*spansPerRequest), r.QueueItemsSalvaged)
}

func TestMetadataRoundTrip(t *testing.T) {
	read, write, dispatched, ok := parseMetadata(marshalMetadata(7, 9, 3, 11, []uint64{1, 2}))
	require.True(t, ok)
	assert.Equal(t, []uint64{3, 11}, []uint64{read, write})
	assert.Equal(t, []uint64{1, 2}, dispatched)
	_, _, _, ok = parseMetadata([]byte{0xff, 0xff})
	assert.False(t, ok)
}
