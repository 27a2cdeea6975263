// Command ringshare shows how the loadbalancing exporter (contrib v0.152.0, consistent_hashing.go: crc32, 100 points
// per endpoint on a 36,000-position ring) spreads trace ids over N gateway replicas and how many move when one is
// added: its ring, copied, over 200,000 random trace ids. docs/scaling.md quotes it (`go run ./cmd/ringshare` in bench/).
package main

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
)

type item struct {
	pos uint32
	ep  string
}

func ring(eps []string) []item {
	var items []item
	used := map[uint32]bool{}
	for _, ep := range eps {
		buf := make([]byte, 4)
		for i := 0; i < 100; i++ {
			h := crc32.NewIEEE()
			binary.LittleEndian.PutUint32(buf, uint32(i))
			h.Write([]byte(ep))
			h.Write(buf)
			p := h.Sum32() % 36000
			for used[p] {
				p = (p + 1) % 36000
			}
			used[p] = true
			items = append(items, item{p, ep})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].pos < items[j].pos })
	return items
}
func find(r []item, id []byte) string {
	p := crc32.ChecksumIEEE(id) % 36000
	i := sort.Search(len(r), func(i int) bool { return r[i].pos >= p })
	if i == len(r) {
		i = 0
	}
	return r[i].ep
}
func main() {
	for n := 2; n <= 16; n++ {
		var a, b []string
		for i := 0; i < n; i++ {
			a = append(a, fmt.Sprintf("10.0.0.%d:4317", i+1))
		}
		b = append(append([]string{}, a...), fmt.Sprintf("10.0.0.%d:4317", n+1))
		ra, rb := ring(a), ring(b)
		share := map[string]int{}
		moved := 0
		const N = 200000
		for k := 0; k < N; k++ {
			id := make([]byte, 16)
			rand.Read(id)
			x, y := find(ra, id), find(rb, id)
			share[x]++
			if x != y {
				moved++
			}
		}
		mn, mx := N, 0
		for _, v := range share {
			mn, mx = min(mn, v), max(mx, v)
		}
		fmt.Printf("N=%d -> %d: moved %.1f%% (ideal %.1f%%); shares at N: min %.1f%% max %.1f%% (ideal %.1f%%)\n", n, n+1, 100*float64(moved)/N, 100.0/float64(n+1), 100*float64(mn)/N, 100*float64(mx)/N, 100.0/float64(n))
	}
}
