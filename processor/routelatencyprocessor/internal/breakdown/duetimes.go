package breakdown

// dueTimes maps 64-bit key fingerprints to a time, and forgets: a key set stays at least one generation and at most
// two (rotate moves the current generation to old and clears what was old). Open addressing on an array of slots:
// a request with a detached entry costs one probe of it, a fraction of a map's insertion, lookup and deletion. Two
// keys share a fingerprint with a probability of about one in 2^64 per pair, so it is exact in practice.
type dueTimes struct {
	cur, old []dueSlot
	n        int   // keys in cur
	since    int64 // when cur began (Unix nanoseconds; 0: not yet)
}

type dueSlot struct {
	h   uint64 // 0: an empty slot (a fingerprint of 0 is stored as 1)
	due int64
}

const minDueSlots = 1024

// set sets h's time to due (the later of the two when h is in cur) and returns the time h had, if any.
func (k *dueTimes) set(h uint64, due int64) (prev int64, ok bool) {
	h = max(h, 1)
	if 2*(k.n+1) > len(k.cur) {
		k.grow()
	}
	slot, found := probe(k.cur, h)
	if found {
		prev, slot.due = slot.due, max(slot.due, due)
		return prev, true
	}
	*slot = dueSlot{h, due}
	k.n++
	if old, found := probe(k.old, h); found {
		return old.due, true
	}
	return 0, false
}

// recorded sets h's time to at, earlier than it was: h's requests were recorded before they were due.
func (k *dueTimes) recorded(h uint64, at int64) {
	h = max(h, 1)
	if 2*(k.n+1) > len(k.cur) {
		k.grow()
	}
	slot, found := probe(k.cur, h)
	if !found {
		k.n++
	}
	*slot = dueSlot{h, at}
}

// get returns h's time, if h is known.
func (k *dueTimes) get(h uint64) (int64, bool) {
	h = max(h, 1)
	if slot, found := probe(k.cur, h); found {
		return slot.due, true
	}
	if slot, found := probe(k.old, h); found {
		return slot.due, true
	}
	return 0, false
}

// rotate begins a new generation when cur has lasted generation: what was set before the previous one began is
// forgotten (all of it after two generations).
func (k *dueTimes) rotate(now, generation int64) {
	if k.since == 0 {
		k.since = now
	}
	if now-k.since < generation {
		return
	}
	if now-k.since >= 2*generation {
		clear(k.cur)
		k.n = 0
	}
	k.old, k.cur = k.cur, k.old
	// The new generation takes about as many keys as the last: an array sized for many more is let go.
	if len(k.cur) > 8*max(minDueSlots, 2*k.n) {
		k.cur = nil
	}
	clear(k.cur)
	k.n, k.since = 0, now
}

func (k *dueTimes) grow() {
	grown := make([]dueSlot, max(minDueSlots, 2*len(k.cur)))
	for _, s := range k.cur {
		if s.h != 0 {
			slot, _ := probe(grown, s.h)
			*slot = s
		}
	}
	k.cur = grown
}

// probe returns h's slot in slots (a power of two in length, less than half full) and whether h is in it; when it
// is not, the slot is the empty one where it goes (nil for no slots).
func probe(slots []dueSlot, h uint64) (*dueSlot, bool) {
	if len(slots) == 0 {
		return nil, false
	}
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		switch slots[i].h {
		case h:
			return &slots[i], true
		case 0:
			return &slots[i], false
		}
	}
}
