package breakdown

// recentKeys is a set of 64-bit key fingerprints that forgets: a key added stays at least a grace and at most
// about two (rotate moves the current generation to old and clears what was old). Open addressing on arrays of
// fingerprints: a request recorded costs one write in them, a fraction of a map's insertion and deletion. Two keys
// share a fingerprint with a probability of about one in 2^64 per pair, so it is exact in practice.
type recentKeys struct {
	cur, old []uint64 // 0: an empty slot (a fingerprint of 0 is stored as 1)
	n        int      // fingerprints in cur
	since    int64    // when cur began (Unix nanoseconds; 0: not yet)
}

const minRecentSlots = 1024

func (k *recentKeys) add(h uint64) {
	h = max(h, 1)
	if 2*(k.n+1) > len(k.cur) {
		k.grow()
	}
	if insert(k.cur, h) {
		k.n++
	}
}

func (k *recentKeys) has(h uint64) bool {
	h = max(h, 1)
	return contains(k.cur, h) || contains(k.old, h)
}

// rotate begins a new generation when cur has lasted grace: what was added before the previous one is forgotten
// (both, after two graces). Called before has as well as before add, so that a key lasts at most two graces,
// however far apart the calls come.
func (k *recentKeys) rotate(now, grace int64) {
	if k.since == 0 {
		k.since = now
	}
	if now-k.since < grace {
		return
	}
	if now-k.since >= 2*grace {
		clear(k.cur)
		k.n = 0
	}
	k.old, k.cur = k.cur, k.old
	// The new generation takes about as many keys as the last: an array sized for many more is let go.
	if len(k.cur) > 8*max(minRecentSlots, 2*k.n) {
		k.cur = nil
	}
	clear(k.cur)
	k.n, k.since = 0, now
}

func (k *recentKeys) grow() {
	grown := make([]uint64, max(minRecentSlots, 2*len(k.cur)))
	for _, h := range k.cur {
		if h != 0 {
			insert(grown, h)
		}
	}
	k.cur = grown
}

// insert puts h in slots (a power of two in length, less than half full), reporting whether it was new.
func insert(slots []uint64, h uint64) bool {
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch slots[i] {
		case h:
			return false
		case 0:
			slots[i] = h
			return true
		}
	}
}

func contains(slots []uint64, h uint64) bool {
	if len(slots) == 0 {
		return false
	}
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch slots[i] {
		case h:
			return true
		case 0:
			return false
		}
	}
}
