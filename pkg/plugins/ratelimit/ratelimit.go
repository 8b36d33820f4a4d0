/*
Copyright 2026 The plugin-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package ratelimit is a token-bucket rate limiter plugin type, written against the public
// SDK (pkg/plugin) only. Each key (a user, a client, a route: the caller decides) has a
// bucket of options.burst tokens that refills at options.rate tokens per second; a take
// succeeds when the bucket holds the tokens asked for.
//
//	POST /plugins/{name}/take  {"key": "user-1", "tokens": 1}
//	     → {"key":"user-1","allowed":true,"remaining":4,"retryAfterSeconds":0,"limit":{"rate":1,"burst":5}}
//	GET  /plugins/{name}/get?key=user-1
//	     → {"key":"user-1","tokens":4,"limit":{"rate":1,"burst":5}}
//	POST /plugins/{name}/reset {"key": "user-1"}, or {} for every key
//	     → {"keysReset":1}
//
// A key never seen holds a full bucket. At most options.maxKeys buckets are kept: a take for
// a new key when the table is full evicts the least recently used bucket if it has refilled
// (a full bucket is the same as none, so nothing is lost); otherwise the take is refused
// with 503 and the time after which that bucket will be full, rather than forgetting a key
// that is being limited (cycling through new keys must not reset someone's limit).
//
// A reload (Reconfigure) keeps every bucket. Each bucket is first refilled up to the reload
// at the old rate, then serves under the new rate and is capped at the new burst. A smaller
// maxKeys forgets the least recently used buckets, beyond the new bound, at the new
// instance's first take or reset. Buckets survive restarts through Snapshot and Restore.
package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Type is the plugin type name in config.json.
const Type = "ratelimit"

// Bounds and defaults of the options and requests.
const (
	// MaxRate bounds options.rate (tokens per second).
	MaxRate = 1e9
	// MaxBurst bounds options.burst; with MaxRate it keeps token counts exact enough in a
	// float64.
	MaxBurst = 1_000_000_000
	// DefaultMaxKeys is options.maxKeys when omitted.
	DefaultMaxKeys = 10_000
	// MaxMaxKeys bounds options.maxKeys.
	MaxMaxKeys = 1_000_000
	// MaxKeyBytes bounds a key.
	MaxKeyBytes = 256
)

// epsilon absorbs float rounding in refills, so that a client that waits exactly
// retryAfterSeconds is allowed; it lets at most one token through per 1e9 takes.
const epsilon = 1e-9

var operations = []plugin.Operation{
	{Name: "take", Method: http.MethodPost, Mutating: true, Description: `takes {"tokens": N} (default 1, at most burst) from the bucket of {"key": K} if it holds them; answers allowed, remaining and retryAfterSeconds`},
	{Name: "get", Method: http.MethodGet, Description: "reads the tokens in the bucket of ?key=K without taking any (a key never seen is full)"},
	{Name: "reset", Method: http.MethodPost, Mutating: true, Description: `refills the bucket of {"key": K}, or every bucket for {}; answers keysReset`},
}

var optionsSchema = json.RawMessage(`{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {
    "rate": {
      "description": "tokens added to each key's bucket per second; fractional rates are fine (0.5 is one token every 2 s)",
      "type": "number",
      "exclusiveMinimum": 0,
      "maximum": 1000000000
    },
    "burst": {
      "description": "bucket capacity: the most tokens a key can take at once or in a burst; a new key starts full. Default: ceil(rate), at least 1",
      "type": "integer",
      "minimum": 1,
      "maximum": 1000000000
    },
    "maxKeys": {
      "description": "most buckets kept (bounds memory). A take for a new key when full evicts the least recently used bucket if it has refilled, else is refused with 503",
      "type": "integer",
      "minimum": 1,
      "maximum": 1000000,
      "default": 10000
    }
  },
  "required": ["rate"],
  "additionalProperties": false
}`)

// Factory builds rate limiters. Its zero value uses time.Now.
type Factory struct {
	now func() time.Time
}

var _ plugin.Factory = Factory{}

// Option configures a Factory.
type Option func(*Factory)

// WithClock makes the factory's limiters read time from now instead of time.Now: tests
// move a fake clock instead of sleeping.
func WithClock(now func() time.Time) Option {
	return func(f *Factory) { f.now = now }
}

// NewFactory returns a Factory with opts applied.
func NewFactory(opts ...Option) Factory {
	var f Factory
	for _, o := range opts {
		o(&f)
	}
	return f
}

// Type implements plugin.Factory.
func (Factory) Type() string { return Type }

// Operations implements plugin.Factory.
func (Factory) Operations() []plugin.Operation { return operations }

// OptionsSchema implements plugin.Factory.
func (Factory) OptionsSchema() json.RawMessage { return optionsSchema }

// New implements plugin.Factory.
func (f Factory) New(spec plugin.Spec, logger *slog.Logger) (plugin.Instance, error) {
	cfg, err := decodeOptions(spec)
	if err != nil {
		return nil, err
	}
	now := f.now
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &store{buckets: map[string]*bucket{}}
	s.lru.prev, s.lru.next = &s.lru, &s.lru
	return (&limiter{config: cfg, store: s, now: now, logger: logger}).instance(), nil
}

// options are the Go side of the options schema; pointers tell an omitted option.
type options struct {
	Rate    *float64 `json:"rate"`
	Burst   *int64   `json:"burst"`
	MaxKeys *int64   `json:"maxKeys"`
}

// config is one limiter's settled options.
type config struct {
	rate    float64
	burst   int64
	maxKeys int
}

// decodeOptions checks the options again on the Go side (the host has checked them against
// the schema, but New may be called without a host).
func decodeOptions(spec plugin.Spec) (config, error) {
	var o options
	if err := plugin.DecodeOptions(spec, &o); err != nil {
		return config{}, err
	}
	var c config
	switch {
	case o.Rate == nil:
		return c, errors.New("options.rate: required")
	case !(*o.Rate > 0) || *o.Rate > MaxRate:
		return c, fmt.Errorf("options.rate: %v, must be more than 0 and at most %v", *o.Rate, float64(MaxRate))
	}
	c.rate = *o.Rate
	c.burst = max(1, int64(math.Ceil(c.rate)))
	if o.Burst != nil {
		if *o.Burst < 1 || *o.Burst > MaxBurst {
			return c, fmt.Errorf("options.burst: %d, must be 1 to %d", *o.Burst, MaxBurst)
		}
		c.burst = *o.Burst
	}
	c.maxKeys = DefaultMaxKeys
	if o.MaxKeys != nil {
		if *o.MaxKeys < 1 || *o.MaxKeys > MaxMaxKeys {
			return c, fmt.Errorf("options.maxKeys: %d, must be 1 to %d", *o.MaxKeys, MaxMaxKeys)
		}
		c.maxKeys = int(*o.MaxKeys)
	}
	return c, nil
}

// store is the buckets, shared by a limiter and the limiters its Reconfigure returns.
type store struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	// lru is the sentinel of a ring of the buckets, most recently used first.
	lru bucket
}

// bucket holds a key's tokens as of at; it refills lazily when next touched.
type bucket struct {
	key        string
	tokens     float64
	at         time.Time
	prev, next *bucket
}

func (s *store) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

func (s *store) pushFront(b *bucket) {
	b.prev, b.next = &s.lru, s.lru.next
	s.lru.next.prev = b
	s.lru.next = b
}

func (s *store) remove(b *bucket) {
	s.unlink(b)
	delete(s.buckets, b.key)
}

// oldest returns the least recently used bucket, nil when there is none.
func (s *store) oldest() *bucket {
	if s.lru.prev == &s.lru {
		return nil
	}
	return s.lru.prev
}

// limiter is one configuration of a rate limiter over a shared store. Its config never
// changes; Reconfigure returns another limiter.
type limiter struct {
	config
	store  *store
	now    func() time.Time
	logger *slog.Logger
}

// tokensAt returns b's tokens refilled up to now under l's rate and burst. A clock that
// went back (a restored wall-clock time) refills nothing and takes nothing.
func (l *limiter) tokensAt(b *bucket, now time.Time) float64 {
	elapsed := now.Sub(b.at).Seconds()
	if elapsed < 0 {
		elapsed = 0
	}
	return math.Min(float64(l.burst), b.tokens+elapsed*l.rate)
}

// instance is what the host holds: Adapt of the limiter for take and reset, and get with
// its key from the query, which Adapt does not pass to a Typed instance.
type instance struct {
	adapted plugin.Instance
	l       *limiter
}

func (l *limiter) instance() plugin.Instance {
	return instance{adapted: plugin.Adapt[request, any](l), l: l}
}

// Execute implements plugin.Instance.
func (i instance) Execute(ctx context.Context, req plugin.Request) (plugin.Response, error) {
	if req.Operation != "get" {
		return i.adapted.Execute(ctx, req)
	}
	key, err := queryKey(req.RawQuery)
	if err != nil {
		return plugin.Response{}, err
	}
	out, err := i.l.Execute(ctx, "get", request{Key: &key})
	if err != nil {
		return plugin.Response{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return plugin.Response{}, fmt.Errorf("encoding the response of get: %w", err)
	}
	return plugin.Response{Body: b}, nil
}

// Unwrap implements plugin.Wrapper: the host finds the limiter's Reconfigure, Snapshot and
// Restore through it.
func (i instance) Unwrap() any { return i.adapted }

func queryKey(raw string) (string, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "", fmt.Errorf("%w: query: %v", plugin.ErrInvalidRequest, err)
	}
	for name := range q {
		if name != "key" {
			return "", fmt.Errorf("%w: query parameter %q: get takes only key", plugin.ErrInvalidRequest, name)
		}
	}
	switch len(q["key"]) {
	case 0:
		return "", fmt.Errorf("%w: key: required (?key=…)", plugin.ErrInvalidRequest)
	case 1:
		return q["key"][0], nil
	default:
		return "", fmt.Errorf("%w: key: given %d times, once expected", plugin.ErrInvalidRequest, len(q["key"]))
	}
}

// request is the body of take and reset, and get's query. Pointers tell an omitted field
// from a zero one: reset without a key resets every key, with "" it is refused.
type request struct {
	Key    *string `json:"key"`
	Tokens *int64  `json:"tokens"`
}

// Limit is the configuration a response was computed under.
type Limit struct {
	Rate  float64 `json:"rate"`
	Burst int64   `json:"burst"`
}

// TakeResponse answers take.
type TakeResponse struct {
	Key     string `json:"key"`
	Allowed bool   `json:"allowed"`
	// Remaining is the tokens left in the bucket after the take (or before it, when denied).
	Remaining float64 `json:"remaining"`
	// RetryAfterSeconds is how long until the bucket holds the tokens asked for; 0 when
	// allowed.
	RetryAfterSeconds float64 `json:"retryAfterSeconds"`
	Limit             Limit   `json:"limit"`
}

// GetResponse answers get.
type GetResponse struct {
	Key    string  `json:"key"`
	Tokens float64 `json:"tokens"`
	Limit  Limit   `json:"limit"`
}

// ResetResponse answers reset.
type ResetResponse struct {
	// KeysReset is the number of buckets refilled; a key without a bucket is full already
	// and not counted.
	KeysReset int `json:"keysReset"`
}

func checkKey(key *string) (string, error) {
	switch {
	case key == nil:
		return "", fmt.Errorf("%w: key: required", plugin.ErrInvalidRequest)
	case *key == "":
		return "", fmt.Errorf("%w: key: must not be empty", plugin.ErrInvalidRequest)
	case len(*key) > MaxKeyBytes:
		return "", fmt.Errorf("%w: key: %d bytes, at most %d", plugin.ErrInvalidRequest, len(*key), MaxKeyBytes)
	case !utf8.ValidString(*key):
		return "", fmt.Errorf("%w: key: must be valid UTF-8", plugin.ErrInvalidRequest)
	}
	return *key, nil
}

// Execute implements plugin.Typed. A denied take is an answer (allowed false, 200), not an
// error: the caller asked "may I?", and "no, retry after X" is the limiter working, not the
// request failing. Errors are for requests that cannot be answered: bad input (400), or a
// new key when every bucket is in use and none has refilled (503).
func (l *limiter) Execute(_ context.Context, operation string, req request) (any, error) {
	switch operation {
	case "take":
		key, err := checkKey(req.Key)
		if err != nil {
			return nil, err
		}
		n := int64(1)
		if req.Tokens != nil {
			n = *req.Tokens
		}
		if n < 1 || n > l.burst {
			return nil, fmt.Errorf("%w: tokens: %d, must be 1 to the burst (%d): more could never be allowed", plugin.ErrInvalidRequest, n, l.burst)
		}
		return l.take(key, n)
	case "get":
		key, err := checkKey(req.Key)
		if err != nil {
			return nil, err
		}
		if req.Tokens != nil {
			return nil, fmt.Errorf("%w: tokens: get takes only key", plugin.ErrInvalidRequest)
		}
		return l.get(key), nil
	case "reset":
		if req.Tokens != nil {
			return nil, fmt.Errorf("%w: tokens: reset takes only key", plugin.ErrInvalidRequest)
		}
		if req.Key == nil {
			return ResetResponse{KeysReset: l.resetAll()}, nil
		}
		key, err := checkKey(req.Key)
		if err != nil {
			return nil, err
		}
		return ResetResponse{KeysReset: l.reset(key)}, nil
	default:
		return nil, fmt.Errorf("%w: unknown operation %q", plugin.ErrInvalidRequest, operation)
	}
}

func (l *limiter) limit() Limit { return Limit{Rate: l.rate, Burst: l.burst} }

func (l *limiter) take(key string, n int64) (TakeResponse, error) {
	now := l.now()
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	l.shrink()
	b := s.buckets[key]
	if b == nil {
		if len(s.buckets) >= l.maxKeys {
			old := s.oldest()
			if t := l.tokensAt(old, now); t < float64(l.burst)-epsilon {
				wait := (float64(l.burst) - t) / l.rate
				return TakeResponse{}, fmt.Errorf("%w: all %d buckets (options.maxKeys) are in use and none has refilled yet; retry after %.3g s", plugin.ErrUnavailable, l.maxKeys, wait)
			}
			s.remove(old)
		}
		b = &bucket{key: key, tokens: float64(l.burst), at: now}
		s.buckets[key] = b
	} else {
		b.tokens = l.tokensAt(b, now)
		b.at = now
		s.unlink(b)
	}
	s.pushFront(b)
	resp := TakeResponse{Key: key, Limit: l.limit()}
	if need := float64(n); b.tokens >= need-epsilon {
		b.tokens = math.Max(0, b.tokens-need)
		resp.Allowed = true
	} else {
		resp.RetryAfterSeconds = (need - b.tokens) / l.rate
	}
	resp.Remaining = b.tokens
	return resp, nil
}

// shrink forgets the least recently used buckets beyond l.maxKeys, after a reload to a
// smaller maxKeys. It runs at the new limiter's first take or reset rather than in
// Reconfigure, so that a config the host refuses changes nothing. s.mu is held.
func (l *limiter) shrink() {
	s := l.store
	if len(s.buckets) <= l.maxKeys {
		return
	}
	n := len(s.buckets) - l.maxKeys
	for range n {
		s.remove(s.oldest())
	}
	l.logger.Info("Forgot the least recently used buckets beyond options.maxKeys", "forgotten", n, "maxKeys", l.maxKeys)
}

func (l *limiter) get(key string) GetResponse {
	now := l.now()
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := GetResponse{Key: key, Tokens: float64(l.burst), Limit: l.limit()}
	if b := s.buckets[key]; b != nil {
		resp.Tokens = l.tokensAt(b, now)
	}
	return resp
}

func (l *limiter) reset(key string) int {
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	l.shrink()
	b := s.buckets[key]
	if b == nil {
		return 0
	}
	s.remove(b)
	return 1
}

func (l *limiter) resetAll() int {
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.buckets)
	clear(s.buckets)
	s.lru.prev, s.lru.next = &s.lru, &s.lru
	return n
}

// Reconfigure implements plugin.Reconfigurer: a limiter with spec's options over the same
// buckets. l is left as it is. Every bucket is settled: refilled up to now at l's rate and
// capped at l's burst, which changes nothing l computes (refilling in two steps is the same
// as in one), so a config the host refuses changes nothing. The new limiter refills from
// then at its own rate and caps at its own burst on every touch, and applies a smaller
// maxKeys at its first take or reset.
func (l *limiter) Reconfigure(spec plugin.Spec) (plugin.Instance, error) {
	cfg, err := decodeOptions(spec)
	if err != nil {
		return nil, err
	}
	now := l.now()
	s := l.store
	s.mu.Lock()
	for _, b := range s.buckets {
		b.tokens = l.tokensAt(b, now)
		if b.at.Before(now) {
			b.at = now
		}
	}
	s.mu.Unlock()
	return (&limiter{config: cfg, store: s, now: l.now, logger: l.logger}).instance(), nil
}

// snapshot is the saved state. Times are wall-clock (RFC 3339): the monotonic clock the
// refill uses does not survive a restart.
type snapshot struct {
	Buckets map[string]savedBucket `json:"buckets"`
}

type savedBucket struct {
	Tokens float64   `json:"tokens"`
	At     time.Time `json:"at"`
}

// Snapshot implements plugin.Stateful: each bucket as of its last touch (not refilled to
// now), so that an idle limiter's snapshot does not change.
func (l *limiter) Snapshot() (json.RawMessage, error) {
	s := l.store
	s.mu.Lock()
	out := snapshot{Buckets: make(map[string]savedBucket, len(s.buckets))}
	for k, b := range s.buckets {
		out.Buckets[k] = savedBucket{Tokens: math.Min(b.tokens, float64(l.burst)), At: b.at.UTC()}
	}
	s.mu.Unlock()
	return json.Marshal(out)
}

// Restore implements plugin.Stateful. Tokens are capped at the burst and times in the
// future (a clock that went back across the restart) are taken as now; beyond maxKeys,
// the buckets touched longest ago are left out. An invalid entry refuses the whole state.
func (l *limiter) Restore(state json.RawMessage) error {
	var in snapshot
	if err := json.Unmarshal(state, &in); err != nil {
		return fmt.Errorf("rate limiter state: %w", err)
	}
	now := l.now()
	bs := make([]*bucket, 0, len(in.Buckets))
	for k, sb := range in.Buckets {
		if _, err := checkKey(&k); err != nil {
			return fmt.Errorf("rate limiter state: bucket %q: %w", k, err)
		}
		switch {
		case !(sb.Tokens >= 0):
			return fmt.Errorf("rate limiter state: bucket %q: tokens %v, must be at least 0", k, sb.Tokens)
		case sb.At.IsZero():
			return fmt.Errorf("rate limiter state: bucket %q: at: required", k)
		}
		b := &bucket{key: k, tokens: math.Min(sb.Tokens, float64(l.burst)), at: sb.At}
		if b.at.After(now) {
			b.at = now
		}
		bs = append(bs, b)
	}
	// Least recently used first; equal times in key order, so that the order is the same
	// on every restore.
	sort.Slice(bs, func(i, j int) bool {
		if !bs[i].at.Equal(bs[j].at) {
			return bs[i].at.Before(bs[j].at)
		}
		return bs[i].key < bs[j].key
	})
	if len(bs) > l.maxKeys {
		bs = bs[len(bs)-l.maxKeys:]
	}
	s := l.store
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.buckets)
	s.lru.prev, s.lru.next = &s.lru, &s.lru
	for _, b := range bs {
		s.buckets[b.key] = b
		s.pushFront(b)
	}
	return nil
}
