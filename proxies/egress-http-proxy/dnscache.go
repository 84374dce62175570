package main

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/egress-router/egress-router/internal/resolver"
)

const (
	// maxCacheTTL caps how long an answer is reused whatever its TTL says, so a name
	// that moves is followed soon even when its records claim a day.
	maxCacheTTL = 30 * time.Second
	// maxCacheEntries bounds the cache: clients choose the names, so the set is theirs
	// to grow.
	maxCacheEntries = 4096
)

// answerCache keeps each successful answer for its TTL (at most maxCacheTTL), so a new
// upstream connection or tunnel to a name looked up a moment ago does not wait on two
// queries. Failures are not kept: the next request asks again. What the cache returns
// is only the list of candidates; the proxy still decides for each address and checks
// it again in the dial's Control, so a cached answer cannot let through an address the
// rules in force deny.
type answerCache struct {
	lookup func(ctx context.Context, name string) (resolver.Answer, error)
	now    func() time.Time

	mu      sync.Mutex
	answers map[string]cachedAnswer
}

type cachedAnswer struct {
	addrs   []netip.Addr // shared by every caller: read only
	expires time.Time
}

func newAnswerCache(lookup func(context.Context, string) (resolver.Answer, error)) *answerCache {
	return &answerCache{lookup: lookup, now: time.Now, answers: map[string]cachedAnswer{}}
}

// resolve returns the addresses of name, from the cache while its answer is fresh.
func (c *answerCache) resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	now := c.now()
	c.mu.Lock()
	a, ok := c.answers[name]
	c.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.addrs, nil
	}
	answer, err := c.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if ttl := min(answer.TTL, maxCacheTTL); ttl > 0 {
		c.store(name, cachedAnswer{addrs: answer.Addrs, expires: now.Add(ttl)}, now)
	}
	return answer.Addrs, nil
}

// store adds an answer; a full cache first drops its expired answers and, if that frees
// nothing, one answer at random.
func (c *answerCache) store(name string, a cachedAnswer, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.answers[name]; !ok && len(c.answers) >= maxCacheEntries {
		for n, old := range c.answers {
			if !now.Before(old.expires) {
				delete(c.answers, n)
			}
		}
		for n := range c.answers {
			if len(c.answers) < maxCacheEntries {
				break
			}
			delete(c.answers, n)
		}
	}
	c.answers[name] = a
}
