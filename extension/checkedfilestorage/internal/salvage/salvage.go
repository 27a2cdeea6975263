// Package salvage checks the bbolt files of contrib's file_storage before they are opened, and copies what can still
// be read out of a damaged one into a fresh file. bbolt keeps no checksums of its data pages and memory-maps the
// file: a file cut short by a power loss or a full disk faults (SIGBUS) the first time a missing page is touched, and
// a flipped byte in a page header makes bbolt panic. Both kill the collector at start, every start, until someone
// deletes the file (contrib issue #35899); file_storage's own `recreate` can catch a panic but not a SIGBUS, and it
// drops the whole queue where most of it was readable.
package salvage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/xpdata/request"
	"google.golang.org/protobuf/encoding/protowire"
)

// The layout of an exporter's persistent queue (collector exporterhelper v0.152.0, internal/queue): bucket "default",
// metadata under "qmv0" (protobuf PersistentMetadata: fixed64 fields items_size=1, bytes_size=2, read_index=3,
// write_index=4, packed currently_dispatched_items=5), each request under its index in decimal, as OTLP protobuf.
var (
	bucketName  = []byte("default")
	metadataKey = []byte("qmv0")
)

// Report says what a check or a salvage found in one file.
type Report struct {
	Path string
	// Damage is why the file could not be read whole; nil when it could.
	Damage error
	// MovedTo is where the damaged file was kept, for a post-mortem.
	MovedTo string
	// Keys copied into the fresh file.
	KeysSalvaged int
	// Queue figures, when the file is an exporter queue: requests it held, requests salvaged (readable and
	// decodable), and the spans, data points or log records in the salvaged requests.
	QueueRequests, QueueRequestsSalvaged int
	QueueItemsSalvaged                   int64
}

// Unreadable is how many queued requests were lost.
func (r Report) Unreadable() int { return r.QueueRequests - r.QueueRequestsSalvaged }

// Check reads every key and value of the file once; it returns the damage it met, or nil.
// bbolt has no checksums on data pages, so a garbled value reads fine: a queued request must also decode.
func Check(path string) error {
	signal := signalOf(path)
	var undecodable []string
	decodable := 0
	err := readAll(path, func(bucket, k, v []byte) {
		if _, err := strconv.ParseUint(string(k), 10, 64); err == nil && bytes.Equal(bucket, bucketName) {
			if _, ok := decodedItems(signal, v); ok {
				decodable++
			} else {
				undecodable = append(undecodable, string(k))
			}
		}
	})
	// Nothing decoding at all is a format this check does not know (a newer queue), not damage: leave it alone.
	if err == nil && len(undecodable) > 0 && decodable > 0 {
		err = fmt.Errorf("queued requests that do not decode: %v", undecodable)
	}
	return err
}

// Repair checks the file and, when it is damaged, moves it aside (path + ".corrupt-" + time) and writes what could
// be read into a fresh file at path. A queue's metadata is rewritten to match what was salvaged, so the queue replays
// every salvaged request and its size is not charged for lost ones.
func Repair(path string, now time.Time) (Report, error) {
	report := Report{Path: path}
	if report.Damage = Check(path); report.Damage == nil {
		return report, nil
	}
	report.MovedTo = path + ".corrupt-" + now.UTC().Format("20060102T150405")
	if err := os.Rename(path, report.MovedTo); err != nil {
		return report, fmt.Errorf("move damaged %s aside: %w", path, err)
	}

	entries := map[string][]byte{}
	_ = readAll(report.MovedTo, func(bucket, k, v []byte) { // a second walk: the damage stops it where it was met
		if bytes.Equal(bucket, bucketName) {
			entries[string(k)] = bytes.Clone(v)
		}
	})
	// What the tree no longer reaches (a cut file loses its newest pages, the root among them) is still in the leaf
	// pages left in the file.
	scanned, metas := scanLeafPages(report.MovedTo)
	if _, ok := entries[string(metadataKey)]; !ok && len(metas) > 0 {
		entries[string(metadataKey)] = newestMetadata(metas)
	}
	for k, v := range scanned {
		if _, ok := entries[k]; !ok {
			entries[k] = v
		}
	}
	if meta, ok := entries[string(metadataKey)]; ok || hasIndexKeys(entries) {
		rewriteQueue(entries, meta, signalOf(path), &report)
	}
	report.KeysSalvaged = len(entries)

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return report, fmt.Errorf("create fresh %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketName)
		if err != nil {
			return err
		}
		for k, v := range entries { // bbolt keeps keys sorted whatever the order of the puts
			if err := b.Put([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	return report, errors.Join(err, db.Close())
}

// readAll opens the file read-only and calls visit for every key of every top-level bucket, touching every value
// byte. A fault on a page past the end of the file or bbolt's panic on a garbled page becomes the returned error.
func readAll(path string, visit func(bucket, k, v []byte)) error {
	return withReadOnly(path, func(db *bbolt.DB) error {
		return view(db, func(tx *bbolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					touch(v)
					visit(name, k, v)
					return nil
				})
			})
		})
	})
}

func withReadOnly(path string, fn func(*bbolt.DB) error) (err error) {
	// Faults on the memory-mapped file panic in this goroutine instead of killing the process.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable page: %v", r)
		}
	}()
	if info, statErr := os.Stat(path); statErr != nil {
		return statErr
	} else if info.Size() == 0 {
		return nil // bbolt initialises an empty file
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}

// view is db.View with a panic (bbolt's, or a fault) returned as an error; bbolt rolls the transaction back.
func view(db *bbolt.DB, fn func(*bbolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("unreadable page: %v", r)
		}
	}()
	return db.View(fn)
}

var touched byte

// touch reads every byte of v, so that a value's missing overflow pages fault here, under recover.
func touch(v []byte) {
	var x byte
	for _, c := range v {
		x ^= c
	}
	touched = x
}

func hasIndexKeys(entries map[string][]byte) bool {
	for k := range entries {
		if _, err := strconv.ParseUint(k, 10, 64); err == nil {
			return true
		}
	}
	return false
}

// rewriteQueue keeps the requests that decode, and writes metadata that covers exactly them. Without readable
// metadata, the queue spans the lowest to the highest index found.
func rewriteQueue(entries map[string][]byte, meta []byte, signal string, report *Report) {
	readIndex, writeIndex, dispatched, metaOK := parseMetadata(meta)
	if !metaOK {
		readIndex, writeIndex, dispatched = ^uint64(0), 0, nil
		for k := range entries {
			if i, err := strconv.ParseUint(k, 10, 64); err == nil {
				readIndex, writeIndex = min(readIndex, i), max(writeIndex, i+1)
			}
		}
		if writeIndex == 0 {
			readIndex = 0
		}
	}
	queued := func(i uint64) bool { return (i >= readIndex && i < writeIndex) || slices.Contains(dispatched, i) }
	report.QueueRequests = len(dispatched) + int(writeIndex-readIndex)

	var items, byteSize int64
	var keptDispatched []uint64
	for k, v := range entries {
		i, err := strconv.ParseUint(k, 10, 64)
		if err != nil {
			continue // the metadata, rewritten below
		}
		if !queued(i) { // a leftover the queue would never read
			delete(entries, k)
			continue
		}
		n, ok := decodedItems(signal, v)
		if !ok {
			delete(entries, k)
			continue
		}
		items += n
		byteSize += int64(len(v))
		report.QueueRequestsSalvaged++
		if slices.Contains(dispatched, i) {
			keptDispatched = append(keptDispatched, i)
		}
	}
	slices.Sort(keptDispatched)
	report.QueueItemsSalvaged = items
	entries[string(metadataKey)] = marshalMetadata(items, byteSize, readIndex, writeIndex, keptDispatched)
}

func parseMetadata(b []byte) (readIndex, writeIndex uint64, dispatched []uint64, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, nil, false
		}
		b = b[n:]
		switch {
		case typ == protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return 0, 0, nil, false
			}
			b = b[n:]
			switch num {
			case 3:
				readIndex = v
			case 4:
				writeIndex = v
			case 5:
				dispatched = append(dispatched, v)
			}
		case num == 5 && typ == protowire.BytesType:
			packed, n := protowire.ConsumeBytes(b)
			if n < 0 || len(packed)%8 != 0 {
				return 0, 0, nil, false
			}
			b = b[n:]
			for ; len(packed) > 0; packed = packed[8:] {
				dispatched = append(dispatched, binary.LittleEndian.Uint64(packed))
			}
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return 0, 0, nil, false
			}
			b = b[n:]
		}
	}
	// A queue holds at most its queue_size requests; a garbled index pair would claim billions.
	return readIndex, writeIndex, dispatched, readIndex <= writeIndex && writeIndex-readIndex <= 1<<24
}

func marshalMetadata(items, byteSize int64, readIndex, writeIndex uint64, dispatched []uint64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		v   uint64
	}{{1, uint64(items)}, {2, uint64(byteSize)}, {3, readIndex}, {4, writeIndex}} {
		if f.v != 0 {
			b = protowire.AppendTag(b, f.num, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, f.v)
		}
	}
	if len(dispatched) > 0 {
		packed := make([]byte, 0, 8*len(dispatched))
		for _, i := range dispatched {
			packed = binary.LittleEndian.AppendUint64(packed, i)
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	return b
}

// signalOf reads the signal from the file name file_storage gives an exporter's queue (exporter_<type>_<name>_<signal>).
func signalOf(path string) string {
	for _, s := range []string{"traces", "metrics", "logs"} {
		if strings.HasSuffix(path, "_"+s) {
			return s
		}
	}
	return ""
}

// decodedItems decodes a queued request as the queue does (with its request context, else plain OTLP protobuf), and
// counts its spans, data points or log records (the items sizer's unit). A request of an unknown signal counts 1
// and is kept.
func decodedItems(signal string, v []byte) (int64, bool) {
	var n int
	var err error
	switch signal {
	case "traces":
		var td ptrace.Traces
		if _, td, err = request.UnmarshalTraces(v); errors.Is(err, request.ErrInvalidFormat) {
			td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(v)
		}
		if err == nil {
			n = td.SpanCount()
		}
	case "metrics":
		var md pmetric.Metrics
		if _, md, err = request.UnmarshalMetrics(v); errors.Is(err, request.ErrInvalidFormat) {
			md, err = (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(v)
		}
		if err == nil {
			n = md.DataPointCount()
		}
	case "logs":
		var ld plog.Logs
		if _, ld, err = request.UnmarshalLogs(v); errors.Is(err, request.ErrInvalidFormat) {
			ld, err = (&plog.ProtoUnmarshaler{}).UnmarshalLogs(v)
		}
		if err == nil {
			n = ld.LogRecordCount()
		}
	default:
		n = 1
	}
	return int64(n), err == nil
}

// bbolt's page layout (go.etcd.io/bbolt internal/common): a 16-byte header (id uint64, flags uint16, count uint16,
// overflow uint32), then for a leaf page count elements of 16 bytes (flags, pos, ksize, vsize uint32), the key at
// the element's address + pos and the value right after it.
const (
	pageHeaderSize  = 16
	leafElementSize = 16
	leafPageFlag    = 0x02
	bucketLeafFlag  = 0x01
)

// scanLeafPages reads the file as plain bytes (no memory map, so nothing faults) and collects every key and value
// of every leaf page that is well formed, live or stale. Only keys that are queue indices and the queue metadata are
// kept: an index is written once, so a stale copy holds the same request, and the metadata decides which indices are
// still queued. Every version of the metadata found is returned.
func scanLeafPages(path string) (items map[string][]byte, metas [][]byte) {
	items = map[string][]byte{}
	data, err := os.ReadFile(path)
	if err != nil || len(data) < 2*pageHeaderSize+12 {
		return items, nil
	}
	pageSize := int(binary.LittleEndian.Uint32(data[pageHeaderSize+8:]))
	if pageSize < 512 || pageSize > 1<<20 || pageSize&(pageSize-1) != 0 {
		pageSize = os.Getpagesize()
	}
	for off := 2 * pageSize; off+pageHeaderSize <= len(data); {
		id := binary.LittleEndian.Uint64(data[off:])
		flags := binary.LittleEndian.Uint16(data[off+8:])
		count := int(binary.LittleEndian.Uint16(data[off+10:]))
		overflow := int(binary.LittleEndian.Uint32(data[off+12:]))
		if id != uint64(off/pageSize) || flags != leafPageFlag || overflow > len(data)/pageSize || off+(overflow+1)*pageSize > len(data) {
			off += pageSize
			continue
		}
		end := off + (overflow+1)*pageSize
		page := data[off:end]
		for i := 0; i < count; i++ {
			e := pageHeaderSize + i*leafElementSize
			if e+leafElementSize > len(page) {
				break
			}
			eflags := binary.LittleEndian.Uint32(page[e:])
			pos, ksize, vsize := int(binary.LittleEndian.Uint32(page[e+4:])), int(binary.LittleEndian.Uint32(page[e+8:])), int(binary.LittleEndian.Uint32(page[e+12:]))
			k0 := e + pos
			if eflags&bucketLeafFlag != 0 || ksize > len(page) || vsize > len(page) || k0+ksize+vsize > len(page) {
				continue
			}
			key, value := string(page[k0:k0+ksize]), page[k0+ksize:k0+ksize+vsize]
			if key == string(metadataKey) {
				metas = append(metas, bytes.Clone(value))
			} else if _, err := strconv.ParseUint(key, 10, 64); err == nil {
				items[key] = bytes.Clone(value)
			}
		}
		off = end
	}
	return items, metas
}

// newestMetadata picks the latest of several versions: read and write indices only grow.
func newestMetadata(metas [][]byte) []byte {
	var newest []byte
	var bestRead, bestWrite uint64
	for _, m := range metas {
		r, w, _, ok := parseMetadata(m)
		if ok && (newest == nil || w > bestWrite || (w == bestWrite && r > bestRead)) {
			newest, bestRead, bestWrite = m, r, w
		}
	}
	return newest
}
