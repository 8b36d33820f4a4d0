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

package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/agilira/argus"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

// benchServer serves h on a real loopback socket, like the binary does.
func benchServer(b *testing.B, h http.Handler) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// bareHandler is the baseline: plain net/http doing the same work as the host's increment
// (read the small JSON body, one atomic add, a JSON answer) with nothing else.
func bareHandler() http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
		v, err := counter.DecodeValue(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value":%d}`+"\n", n.Add(v))
	})
}

func benchHTTP(b *testing.B, url string) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"value": 1}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkHTTPIncrement compares the host's increment with the bare baseline over the same
// client and loopback in the same run; hack/bench.sh reports the throughput ratio.
func BenchmarkHTTPIncrement(b *testing.B) {
	b.Run("host", func(b *testing.B) {
		benchHTTP(b, benchServer(b, newTestHost(b, seedConfig(1)).Handler())+"/plugins/counter-1/increment")
	})
	b.Run("bare", func(b *testing.B) {
		benchHTTP(b, benchServer(b, bareHandler())+"/plugins/counter-1/increment")
	})
}

// BenchmarkHandlerIncrement is the host's handler alone, without sockets: its own cost and
// allocations per request.
func BenchmarkHandlerIncrement(b *testing.B) {
	h := newTestHost(b, seedConfig(1)).Handler()
	body := strings.NewReader(`{"value": 1}`)
	req, _ := http.NewRequest("POST", "/plugins/counter-1/increment", body)
	req.Header.Set("Content-Type", "application/json")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = body.Seek(0, io.SeekStart)
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// SetReadDeadline is what the real server's writer offers to ResponseController.
func (d *discardWriter) SetReadDeadline(time.Time) error { return nil }

func manyPlugins(n, increment int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"plugins":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"name":"counter-%d","type":"counter","options":{"increment":%d}}`, i, increment)
	}
	sb.WriteString(`]}`)
	return []byte(sb.String())
}

// BenchmarkApply1000Plugins: parse, validate, diff and swap in a 1,000-plugin config where
// every plugin changes (target ≤ 10 ms).
func BenchmarkApply1000Plugins(b *testing.B) {
	h := newTestHost(b, string(manyPlugins(1000, 1)))
	cfgs := [][]byte{manyPlugins(1000, 2), manyPlugins(1000, 1)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := h.Apply(cfgs[i%2]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkApplyAudited is a reload of the seed config (one plugin; the increment
// alternates) without an audit trail and with the hash-chained one, in the same run: what
// the trail adds to the reload path.
func BenchmarkApplyAudited(b *testing.B) {
	cfgs := [][]byte{[]byte(seedConfig(2)), []byte(seedConfig(1))}
	for _, trail := range []bool{false, true} {
		name := "no-trail"
		if trail {
			name = "hash-chain"
		}
		b.Run(name, func(b *testing.B) {
			opts := Options{Registry: MustRegistry(counter.Factory{})}
			if trail {
				opts.Audit = OpenAudit(AuditOptions{Path: filepath.Join(b.TempDir(), "audit.jsonl"), MaxBytes: 1 << 30}, slog.New(slog.DiscardHandler))
				b.Cleanup(func() { _ = opts.Audit.Close() })
			}
			h := New(opts)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := h.Apply(cfgs[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAuditRecord is one audit record of an applied config: as the host wrote it
// before the hash chain (json.Marshal of the record and one write to an O_APPEND file,
// --audit-log up to #22) and as it writes it now (Audit.Record: the chained, sealed record
// in one write), in the same run. Both log the record to a discarding logger.
func BenchmarkAuditRecord(b *testing.B) {
	rec := ReloadRecord{Time: time.Unix(1, 0), Result: ReloadApplied, Revision: "sha256:" + strings.Repeat("a", 64),
		PreviousRevision: "sha256:" + strings.Repeat("b", 64), Changed: []string{"counter-1"}, Plugins: 1}
	log := slog.New(slog.DiscardHandler)
	b.Run("json-line", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "audit.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		b.ReportAllocs()
		for b.Loop() {
			log.Info("Config applied", "reload", rec)
			line, err := json.Marshal(rec)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Write(append(line, '\n')); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hash-chain", func(b *testing.B) {
		a := OpenAudit(AuditOptions{Path: filepath.Join(b.TempDir(), "audit.jsonl"), MaxBytes: 1 << 30}, log)
		defer func() { _ = a.Close() }()
		m := NewMetrics(nil)
		b.ReportAllocs()
		for b.Loop() {
			a.Record(log, m, "config", rec)
		}
	})
}

// BenchmarkReloadLatencyKubelet measures, on a kubelet-style projection, the time from the
// moment the new ..data link is in place to the host serving the new config, with a 100 ms
// poll. It reports p50/p99/max over the updates (target p99 ≤ poll + 20 ms).
func BenchmarkReloadLatencyKubelet(b *testing.B) {
	const poll = 100 * time.Millisecond
	dir := testutil.ShortTempDir(b)
	w := projection.NewWriter(dir)
	if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
		b.Fatal(err)
	}
	h := newTestHost(b, "")
	src, _ := NewConfigSource(h, filepath.Join(dir, "config.json"))
	_, _ = src.Load()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = src.Watch(ctx, poll) }()
	time.Sleep(2 * poll)

	var lat []time.Duration
	var swapped time.Time
	w.SetHook(func(step string) {
		if step == projection.StepDataSwapped {
			swapped = time.Now()
		}
	})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Land the update at a random phase of the poll, as real updates do.
		time.Sleep(time.Duration(i*37%100) * time.Millisecond)
		want := i + 2
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(want))}); err != nil {
			b.Fatal(err)
		}
		for step(b, h) != int64(want) {
			time.Sleep(100 * time.Microsecond)
		}
		lat = append(lat, time.Since(swapped))
	}
	b.StopTimer()
	reportLatencies(b, lat)
}

// reportLatencies reports the p50, p99 and max of lat in milliseconds, and no ns/op (the
// loop's time includes the waits between changes).
func reportLatencies(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		return float64(lat[int(math.Ceil(p*float64(len(lat))))-1].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkPushLatency measures config push (PUT /config over real HTTP, on loopback) from
// the request's start to the host serving the new config, for a 1-plugin and a 100-plugin
// config (the answer comes once the new config is swapped in), on a host that also watches a
// kubelet-style projection with a 100 ms poll (the projection does not change here). Run it with BenchmarkReloadLatencyKubelet, the same
// change through the projection, for the baseline of the same run. It reports p50/p99/max.
func BenchmarkPushLatency(b *testing.B) {
	for _, plugins := range []int{1, 100} {
		b.Run(fmt.Sprintf("plugins=%d", plugins), func(b *testing.B) {
			config := func(increment int) []byte {
				if plugins == 1 {
					return []byte(seedConfig(increment))
				}
				return manyPlugins(plugins, increment)
			}
			dir := testutil.ShortTempDir(b)
			w := projection.NewWriter(dir)
			if _, err := w.Write(map[string][]byte{"config.json": config(1), "config.json.sequence": []byte("1")}); err != nil {
				b.Fatal(err)
			}
			tokenFile := filepath.Join(b.TempDir(), "push-token")
			if err := os.WriteFile(tokenFile, []byte("bench"), 0o600); err != nil {
				b.Fatal(err)
			}
			h := New(Options{Registry: MustRegistry(counter.Factory{}), PushTokenFile: tokenFile})
			src, _ := NewConfigSource(h, filepath.Join(dir, "config.json"))
			if _, err := src.Load(); err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() { _ = src.Watch(ctx, 100*time.Millisecond) }()
			srv := httptest.NewServer(h.OpsHandler())
			defer srv.Close()
			name := "counter-1"
			if plugins > 1 {
				name = "counter-0"
			}
			served := func() int64 {
				inst, ok := h.Instance(name)
				if !ok {
					return -1
				}
				return inst.(*counter.Counter).IncrementBy()
			}

			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				want := i + 2
				body := config(want)
				req, err := http.NewRequest(http.MethodPut, srv.URL+hostapi.ConfigPath, bytes.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer bench")
				req.Header.Set(hostapi.SequenceHeader, strconv.Itoa(want))
				start := time.Now()
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("push %d: %s", want, resp.Status)
				}
				// The answer comes after the swap: the new config is served already.
				lat = append(lat, time.Since(start))
				if got := served(); got != int64(want) {
					b.Fatalf("after push %d answered 200, the host serves increment %d", want, got)
				}
			}
			b.StopTimer()
			reportLatencies(b, lat)
		})
	}
}

// BenchmarkIdleCPU measures the CPU a watching host burns while nothing changes, against a
// baseline process doing nothing: the host's watch (Argus' Settings, one ticker, on a
// projection or a plain file) and the two Argus watches the host used before: the file
// Watcher with its parking event processor (Argus v1.6.0), on the projection's directory, and
// WatchDirectory. Reported as percent of one core over a 5 s window (b.N is ignored: run with
// -benchtime=1x). go-timecache's ticker runs in the baseline until the first watch stops it.
func BenchmarkIdleCPU(b *testing.B) {
	const (
		window = 5 * time.Second
		poll   = 100 * time.Millisecond
	)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	projected := func(b *testing.B) string {
		dir := testutil.ShortTempDir(b)
		w := projection.NewWriter(dir)
		if _, err := w.Write(map[string][]byte{"config.json": []byte(seedConfig(1))}); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	measure := func(b *testing.B) {
		time.Sleep(time.Second) // settle
		c0, t0 := cpu(), time.Now()
		time.Sleep(window)
		used := cpu() - c0
		b.ReportMetric(100*used.Seconds()/time.Since(t0).Seconds(), "%core")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("baseline-no-watch", measure)
	hostWatch := func(b *testing.B, path string) {
		h := newTestHost(b, "")
		src, _ := NewConfigSource(h, path)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- src.Watch(ctx, poll) }()
		measure(b)
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("host-watch-projection", func(b *testing.B) {
		hostWatch(b, filepath.Join(projected(b), "config.json"))
	})
	b.Run("host-watch-plain-file", func(b *testing.B) {
		path := filepath.Join(testutil.ShortTempDir(b), "config.json")
		if err := os.WriteFile(path, []byte(seedConfig(1)), 0o600); err != nil {
			b.Fatal(err)
		}
		hostWatch(b, path)
	})
	b.Run("argus-file-watcher", func(b *testing.B) {
		w := argus.New(argus.Config{PollInterval: poll, DisableAudit: true, OptimizationStrategy: argus.OptimizationLight})
		defer func() { _ = w.Close() }()
		if err := w.Watch(projected(b), func(argus.ChangeEvent) {}); err != nil {
			b.Fatal(err)
		}
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		measure(b)
	})
	b.Run("argus-watch-directory", func(b *testing.B) {
		dw, err := argus.WatchDirectory(projected(b), argus.DirectoryWatchOptions{
			Patterns: []string{"config.json"}, Recursive: true, PollInterval: poll,
		}, func(argus.DirectoryConfigUpdate) {})
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = dw.Close() }()
		measure(b)
	})
}
