package dns

import (
	"container/list"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCacheTTL caps how long any forwarded answer is cached.
const maxCacheTTL = time.Hour

// cacheKey identifies a forwarded question; name is lower-case.
type cacheKey struct {
	name          string
	qtype, qclass uint16
	do, cd        bool
}

func (k cacheKey) String() string {
	return fmt.Sprintf("%s/%d/%d/%t/%t", k.name, k.qtype, k.qclass, k.do, k.cd)
}

type cacheEntry struct {
	key     cacheKey
	msg     *dns.Msg // never changed once stored
	stored  time.Time
	expires time.Time
}

// cache holds forwarded answers until their TTL runs out, evicting the least
// recently used entry beyond its size.
type cache struct {
	size  int
	mu    sync.Mutex // guards items and lru
	items map[cacheKey]*list.Element
	lru   *list.List // of *cacheEntry, most recently used first
}

func newCache(size int) *cache {
	return &cache{size: size, items: map[cacheKey]*list.Element{}, lru: list.New()}
}

// get returns a copy of the answer cached for k with its TTLs lowered by
// the time it has spent in the cache.
func (c *cache) get(k cacheKey, now time.Time) (*dns.Msg, bool) {
	c.mu.Lock()
	el, ok := c.items[k]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !now.Before(e.expires) {
		c.lru.Remove(el)
		delete(c.items, k)
		c.mu.Unlock()
		return nil, false
	}
	c.lru.MoveToFront(el)
	c.mu.Unlock()

	m := e.msg.Copy()
	age := uint32(now.Sub(e.stored) / time.Second)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range rrs {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(age, h.Ttl)
			}
		}
	}
	return m, true
}

// put caches m for k when it may be cached.
func (c *cache) put(k cacheKey, m *dns.Msg, now time.Time) {
	d, ok := cacheTTL(m)
	if !ok {
		return
	}
	e := &cacheEntry{key: k, msg: m.Copy(), stored: now, expires: now.Add(d)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.items[k] = c.lru.PushFront(e)
	for c.lru.Len() > c.size {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.items, old.Value.(*cacheEntry).key)
	}
}

// len is the number of entries, expired or not.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// cacheTTL is how long m may be cached: the smallest TTL of its answer and
// authority records, or for a negative answer the SOA's negative TTL
// (RFC 2308); failures, truncated answers and negative answers without SOA
// are not cached.
func cacheTTL(m *dns.Msg) (time.Duration, bool) {
	if m.Truncated || (m.Rcode != dns.RcodeSuccess && m.Rcode != dns.RcodeNameError) {
		return 0, false
	}
	var secs uint32
	found := false
	lower := func(t uint32) {
		if !found || t < secs {
			secs, found = t, true
		}
	}
	if m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
		for _, rrs := range [][]dns.RR{m.Answer, m.Ns} {
			for _, rr := range rrs {
				lower(rr.Header().Ttl)
			}
		}
	} else {
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				lower(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
	}
	if !found || secs == 0 {
		return 0, false
	}
	return min(time.Duration(secs)*time.Second, maxCacheTTL), true
}
