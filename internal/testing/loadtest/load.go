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

package loadtest

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// Load describes one vegeta attack.
type Load struct {
	// Workers is the number of concurrent clients (and keep-alive connections).
	Workers int
	// Rate is requests per second; 0 is a closed loop: every worker sends as fast as its
	// answers come back (throughput at a concurrency).
	Rate int
	// Duration bounds the attack; 0 runs until Stop.
	Duration time.Duration
	// Target fills in the i-th request.
	Target func(i uint64, t *vegeta.Target)
}

// Attack is a running attack; OnResult sees every result, from one goroutine.
type Attack struct {
	atk  *vegeta.Attacker
	done chan struct{}
}

// Begin starts l; onResult is called for every result, in one goroutine.
func Begin(l Load, onResult func(*vegeta.Result)) *Attack {
	w := uint64(max(l.Workers, 1))
	atk := vegeta.NewAttacker(vegeta.Workers(w), vegeta.MaxWorkers(w), vegeta.Connections(int(w)),
		vegeta.MaxConnections(int(w)), vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second), vegeta.Redirects(vegeta.NoFollow))
	var mu sync.Mutex
	var seq uint64
	tr := func(t *vegeta.Target) error {
		mu.Lock()
		i := seq
		seq++
		mu.Unlock()
		l.Target(i, t)
		return nil
	}
	a := &Attack{atk: atk, done: make(chan struct{})}
	res := atk.Attack(tr, vegeta.Rate{Freq: l.Rate, Per: time.Second}, l.Duration, "load")
	go func() {
		defer close(a.done)
		for r := range res {
			onResult(r)
		}
	}()
	return a
}

// Stop ends the attack and waits until every result is delivered.
func (a *Attack) Stop() { a.atk.Stop(); <-a.done }

// Wait waits until the attack's duration is over and every result is delivered.
func (a *Attack) Wait() { <-a.done }

// Run runs l to completion and summarises it.
func Run(l Load) Summary {
	var s Summary
	a := Begin(l, s.Add)
	a.Wait()
	return s
}

// Summary aggregates results.
type Summary struct {
	Requests  int
	OK        int // 2xx
	Codes     map[int]int
	Errors    map[string]int // transport errors (code 0)
	latencies []time.Duration
	first     time.Time
	last      time.Time
}

// Add counts one result.
func (s *Summary) Add(r *vegeta.Result) {
	if s.Codes == nil {
		s.Codes, s.Errors = map[int]int{}, map[string]int{}
	}
	s.Requests++
	s.Codes[int(r.Code)]++
	if r.Code >= 200 && r.Code < 300 {
		s.OK++
	}
	if r.Code == 0 {
		s.Errors[r.Error]++
	}
	s.latencies = append(s.latencies, r.Latency)
	if s.first.IsZero() || r.Timestamp.Before(s.first) {
		s.first = r.Timestamp
	}
	if end := r.End(); end.After(s.last) {
		s.last = end
	}
}

// Throughput is 2xx answers per second over the attack.
func (s *Summary) Throughput() float64 {
	d := s.last.Sub(s.first).Seconds()
	if d <= 0 {
		return 0
	}
	return float64(s.OK) / d
}

// Quantile of the latencies (q in [0,1]).
func (s *Summary) Quantile(q float64) time.Duration {
	if len(s.latencies) == 0 {
		return 0
	}
	sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
	i := int(q * float64(len(s.latencies)-1))
	return s.latencies[i]
}

// Non2xx counts answers that were not 2xx, transport errors included.
func (s *Summary) Non2xx() int { return s.Requests - s.OK }

// CodesString is e.g. "200×1000 404×3".
func (s *Summary) CodesString() string {
	var keys []int
	for k := range s.Codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d×%d", k, s.Codes[k]))
	}
	for e, n := range s.Errors {
		parts = append(parts, fmt.Sprintf("%q×%d", e, n))
	}
	return strings.Join(parts, " ")
}

var jsonHeader = http.Header{"Content-Type": []string{"application/json"}}

// Increment fills t with POST /plugins/{name}/increment {"value": v} against base. The
// value is repeated in the query (?v=) so that a result says what was sent.
func Increment(t *vegeta.Target, base, name string, v int64) {
	t.Method = http.MethodPost
	t.URL = fmt.Sprintf("%s/plugins/%s/increment?v=%d", base, name, v)
	t.Body = []byte(fmt.Sprintf(`{"value":%d}`, v))
	t.Header = jsonHeader
}

// Get fills t with GET /plugins/{name}/get.
func Get(t *vegeta.Target, base, name string) {
	t.Method = http.MethodGet
	t.URL = base + "/plugins/" + name + "/get"
	t.Body, t.Header = nil, nil
}

// Plugin is one counter of a generated config.
type Plugin struct {
	Name      string
	Increment string // JSON text, e.g. "10" or "5.5"
	// MaxIdle is connection.max_idle_connections (default 5; over MaxConns is invalid).
	MaxIdle  int
	MaxConns int // default 1000
}

// Config renders a config in the seed format.
func Config(ps ...Plugin) []byte {
	var parts []string
	for _, p := range ps {
		if p.MaxConns == 0 {
			p.MaxConns = 1000
		}
		if p.MaxIdle == 0 {
			p.MaxIdle = 5
		}
		parts = append(parts, fmt.Sprintf(`{"name":%q,"type":"counter","transport":"http","endpoint":"http://localhost:9001","enabled":true,
"auth":{"method":"none"},"connection":{"max_connections":%d,"max_idle_connections":%d,"idle_timeout":"30s","connection_timeout":"10s","request_timeout":"30s","keep_alive":true},
"options":{"increment":%s}}`, p.Name, p.MaxConns, p.MaxIdle, p.Increment))
	}
	return []byte(`{"plugins":[` + strings.Join(parts, ",\n") + "]}\n")
}
