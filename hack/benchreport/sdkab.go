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

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/hotreload/plugin-operator/internal/testing/loadtest"
)

// abOptions are sdkAB's flags.
type abOptions struct {
	base     string        // commit of "today's build"
	rounds   int           // rounds; the issue asks for at least 7
	workers  int           // closed-loop clients per measurement
	duration time.Duration // per measurement; 0: 2 s, 1 s with -quick
}

// abServer is one of the three servers of the A/B run.
type abServer struct {
	key, what string
	bin       string
	proc      *loadtest.Proc
	runs      []loadtest.Summary // one per round
	sent      int64              // 2xx increments, probe and warm-up included
}

// abIncrementPrefix is what every increment answer of counter-1 starts with, on all three
// servers.
const abIncrementPrefix = `{"plugin":"counter-1","operation":"increment","value":`

// sdkAB is issue #19's throughput condition: the pluginhost of -ab-base (main before the
// SDK, the counter internal to the host) and the current tree's, each against the bare
// net/http handler (hack/barehost) in the same rounds, as ratios to it.
func (r *report) sdkAB() error {
	o := r.ab
	d := o.duration
	if d == 0 {
		d = 2 * time.Second
		if r.quick {
			d = time.Second
		}
	}
	if o.rounds < 2 || o.workers < 1 {
		return fmt.Errorf("sdkAB: -ab-rounds must be at least 2 (a spread needs two) and -ab-workers at least 1")
	}
	dir, err := os.MkdirTemp("", "sdkab")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	baseCommit, err := gitOut("rev-parse", "--verify", o.base+"^{commit}")
	if err != nil {
		return err
	}
	head, err := gitOut("rev-parse", "HEAD")
	if err != nil {
		return err
	}
	tree := "HEAD " + head[:12]
	if st, err := gitOut("status", "--porcelain", "--untracked-files=no"); err != nil {
		return err
	} else if st != "" {
		tree += " with uncommitted changes"
	}
	servers := []*abServer{
		{key: "base", what: "pluginhost at " + baseCommit[:12], bin: filepath.Join(dir, "pluginhost-base")},
		{key: "new", what: "pluginhost of the working tree (" + tree + ")", bin: filepath.Join(dir, "pluginhost-new")},
		{key: "bare", what: "hack/barehost", bin: filepath.Join(dir, "barehost")},
	}
	goVersions, err := buildAB(dir, baseCommit, servers)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), loadtest.Config(loadtest.Plugin{Name: "counter-1", Increment: "1"}), 0o644); err != nil {
		return err
	}
	for _, s := range servers {
		p, err := loadtest.Start(s.bin, dir)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		s.proc = p
		defer p.Kill()
	}
	// The same first increment on each fresh server: both hosts must answer it with the
	// same status, Content-Type and bytes.
	answers := map[string]probeAnswer{}
	for _, s := range servers {
		a, err := probeIncrement(s.proc)
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		answers[s.key] = a
		s.sent++
	}
	want := abIncrementPrefix + "1}"
	if b, n := answers["base"], answers["new"]; b != n || strings.TrimSuffix(b.body, "\n") != want || b.status != http.StatusOK {
		return fmt.Errorf("sdkAB: the hosts answer the first increment differently or not with %s:\n  base: %d %q %q\n  new:  %d %q %q",
			want, b.status, b.contentType, b.body, n.status, n.contentType, n.body)
	}
	loadBefore := loadAvg()
	fmt.Fprintf(os.Stderr, "+ sdkAB: %d rounds of %s, %d clients, against %s, %s and %s\n", o.rounds, d, o.workers, servers[0].what, servers[1].what, servers[2].what)
	// Warm-up, not counted: connections, the heap and the CPU's caches of each server.
	for _, s := range servers {
		if _, err := abMeasure(s, o.workers, max(d/2, 500*time.Millisecond)); err != nil {
			return err
		}
	}
	orders := make([]string, o.rounds)
	for i := range o.rounds {
		var names []string
		// Rotated each round so that no server is always measured first or last.
		for k := range servers {
			s := servers[(i+k)%len(servers)]
			sum, err := abMeasure(s, o.workers, d)
			if err != nil {
				return err
			}
			s.runs = append(s.runs, sum)
			names = append(names, s.key)
		}
		orders[i] = strings.Join(names, " → ")
		fmt.Fprintf(os.Stderr, "  round %d (%s): base %.0f, new %.0f, bare %.0f req/s\n", i+1, orders[i],
			servers[0].runs[i].Throughput(), servers[1].runs[i].Throughput(), servers[2].runs[i].Throughput())
	}
	loadAfter := loadAvg()
	// Exact accounting: every 2xx increment reached the counter once, and nothing else did.
	for _, s := range servers {
		v, err := s.proc.Value("counter-1")
		if err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
		if v != s.sent {
			return fmt.Errorf("sdkAB: %s counted %d, but %d increments were answered 2xx", s.what, v, s.sent)
		}
	}
	for _, s := range servers[:2] {
		if err := s.proc.Stop(syscall.SIGTERM); err != nil {
			return fmt.Errorf("%s exit: %v", s.what, err)
		}
	}

	base, cur, bare := servers[0], servers[1], servers[2]
	var ratioBase, ratioNew, diff []float64
	var sb strings.Builder
	fmt.Fprintf(&sb, `Issue #19: the counter's HTTP throughput must not drop with the plugin SDK. Three binaries
built in this run with the same flags (`+"`CGO_ENABLED=0 go build -trimpath`"+`, %s):

- **base**: %s,
  main before the SDK (the counter internal to the host), built in a `+"`git worktree`"+` of it;
- **new**: %s,
  the runtime on pkg/plugin with the counter in pkg/plugins/counter;
- **bare**: hack/barehost, a bare net/http handler doing the same work (read the body, parse
  `+"`{\"value\": N}`"+`, one atomic add, write the JSON answer).

All three run at once with the same config (one counter `+"`counter-1`"+`, `+"`max_connections: 1000`"+`).
Each round measures closed-loop increment throughput (vegeta as a library, %d clients,
keep-alive, %s each) of the three one after the other, the order rotated every round so that
drift and position cancel out; a warm-up run per server before the first round is not
counted. Every answer was 2xx and began `+"`%s`"+`;
both hosts answered the first increment with the same status, Content-Type
(`+"`%s`"+`) and bytes (`+"`%s`"+`);
at the end each counter's value equalled the number of increments it answered.

| round | order | base req/s | new req/s | bare req/s | base / bare | new / bare | new − base |
|---:|---|---:|---:|---:|---:|---:|---:|
`, goVersions, base.what, cur.what, o.workers, d, abIncrementPrefix, answers["new"].contentType, strings.TrimSuffix(answers["new"].body, "\n"))
	for i := range o.rounds {
		bt, nt, rt := base.runs[i].Throughput(), cur.runs[i].Throughput(), bare.runs[i].Throughput()
		rb, rn := bt/rt, nt/rt
		ratioBase, ratioNew, diff = append(ratioBase, rb), append(ratioNew, rn), append(diff, rn-rb)
		fmt.Fprintf(&sb, "| %d | %s | %.0f | %.0f | %.0f | %.3f | %.3f | %+.3f |\n", i+1, orders[i], bt, nt, rt, rb, rn, rn-rb)
	}
	mb, mn := medianOf(ratioBase), medianOf(ratioNew)
	sprB, sprN := spread(ratioBase), spread(ratioNew)
	bound := mb - sprB
	verdict := "**met**"
	if mn < bound {
		verdict = "**not met**"
	}
	fmt.Fprintf(&sb, `
| | base / bare | new / bare | new − base (paired by round) |
|---|---:|---:|---:|
| median over %d rounds | **%.3f** | **%.3f** | %+.3f |
| spread (max − min) | %.3f | %.3f | %.3f |

Condition: median(new / bare) ≥ median(base / bare) − spread(base / bare), that is
%.3f ≥ %.3f − %.3f = %.3f: %s in this run. The spread is the reference's (today's build's ratio
over these rounds): the noise of what is compared against, measured on the same machine at
the same time. The new build's own spread is not used, so a noisier new build cannot widen
its own margin. The spread is max − min, as the issue states it, so one disturbed round
widens it; the paired column compares the two hosts within each round instead.
`, o.rounds, mb, mn, medianOf(diff), sprB, sprN, spread(diff), mn, mb, sprB, bound, verdict)
	if o.rounds < 7 || r.quick {
		fmt.Fprintf(&sb, "\n**This run checks the harness only** (%d rounds of %s): the issue asks for the median of at least 7 rounds of full length.\n", o.rounds, d)
	}
	fmt.Fprintf(&sb, "\nLatency per server, the median over the rounds of each round's quantile:\n\n| server | p50 | p99 |\n|---|---:|---:|\n")
	for _, s := range servers {
		var p50, p99 []float64
		for _, sum := range s.runs {
			p50 = append(p50, float64(sum.Quantile(0.5)))
			p99 = append(p99, float64(sum.Quantile(0.99)))
		}
		fmt.Fprintf(&sb, "| %s | %s | %s |\n", s.key, ms(time.Duration(medianOf(p50))), ms(time.Duration(medianOf(p99))))
	}
	fmt.Fprintf(&sb, "\nGenerator and servers share the machine's %d cores. Machine load average (1 min, /proc/loadavg) before / after the rounds: %s / %s; above the core count, other work competed for the CPU and the spread grows.\n",
		runtime.NumCPU(), loadBefore, loadAfter)
	cmd := fmt.Sprintf("go run ./hack/benchreport -only sdkAB -ab-base %s -ab-rounds %d -ab-workers %d -ab-duration %s", o.base, o.rounds, o.workers, d)
	if r.quick {
		cmd += " -quick"
	}
	r.add("Plugin SDK: today's build against the new one (issue #19)", cmd, sb.String())
	return nil
}

// buildAB builds the three binaries with the same flags: base from a temporary worktree of
// baseCommit (removed again, also on error), new from the current tree, and hack/barehost.
// It returns the Go version the two hosts were built with, which must be the same.
func buildAB(dir, baseCommit string, servers []*abServer) (string, error) {
	src := filepath.Join(dir, "base-src")
	if out, err := exec.Command("git", "worktree", "add", "--detach", src, baseCommit).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git worktree add %s: %v\n%s", baseCommit, err, out)
	}
	buildErr := goBuild(src, servers[0].bin, "./cmd/pluginhost")
	// --force: the build may leave files git does not know of (none expected, but a removal
	// that fails would leave the worktree registered in the repository).
	if out, err := exec.Command("git", "worktree", "remove", "--force", src).CombinedOutput(); err != nil {
		return "", errors.Join(buildErr, fmt.Errorf("git worktree remove %s: %v\n%s", src, err, out))
	}
	if buildErr != nil {
		return "", buildErr
	}
	if err := goBuild(".", servers[1].bin, "./cmd/pluginhost"); err != nil {
		return "", err
	}
	if err := goBuild(".", servers[2].bin, "./hack/barehost"); err != nil {
		return "", err
	}
	var vs []string
	for _, s := range servers[:2] {
		out, err := exec.Command("go", "version", s.bin).Output()
		if err != nil {
			return "", fmt.Errorf("go version %s: %w", s.bin, err)
		}
		f := strings.Fields(string(out))
		vs = append(vs, f[len(f)-1])
	}
	if vs[0] != vs[1] {
		return "", fmt.Errorf("sdkAB: the hosts were built with different Go versions (%s, %s): compare like with like", vs[0], vs[1])
	}
	return vs[0], nil
}

func goBuild(dir, out, pkg string) error {
	c := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	c.Dir = dir
	c.Env = append(os.Environ(), "CGO_ENABLED=0")
	fmt.Fprintf(os.Stderr, "+ (cd %s && CGO_ENABLED=0 go build -trimpath -o %s %s)\n", dir, out, pkg)
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s in %s: %v\n%s", pkg, dir, err, b)
	}
	return nil
}

// abMeasure runs one closed-loop increment attack of d against s. It fails on any answer
// that is not a 2xx increment answer of counter-1.
func abMeasure(s *abServer, workers int, d time.Duration) (loadtest.Summary, error) {
	var sum loadtest.Summary
	var bad []string
	url := s.proc.URL("")
	a := loadtest.Begin(loadtest.Load{Workers: workers, Duration: d, Target: func(_ uint64, t *vegeta.Target) {
		loadtest.Increment(t, url, "counter-1", 1)
	}}, func(res *vegeta.Result) {
		sum.Add(res)
		if res.Code >= 200 && res.Code < 300 && !bytes.HasPrefix(res.Body, []byte(abIncrementPrefix)) && len(bad) < 3 {
			bad = append(bad, fmt.Sprintf("%q", res.Body))
		}
	})
	a.Wait()
	s.sent += int64(sum.OK)
	if sum.Non2xx() > 0 || len(bad) > 0 {
		return sum, fmt.Errorf("sdkAB: %s answered %s; bodies not an increment answer: %v", s.what, sum.CodesString(), bad)
	}
	return sum, nil
}

type probeAnswer struct {
	status            int
	contentType, body string
}

func probeIncrement(p *loadtest.Proc) (probeAnswer, error) {
	resp, err := http.Post(p.URL("/plugins/counter-1/increment"), "application/json", strings.NewReader(`{"value":1}`))
	if err != nil {
		return probeAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return probeAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}, err
}

// spread is max − min.
func spread(vs []float64) float64 {
	lo, hi := vs[0], vs[0]
	for _, v := range vs {
		lo, hi = min(lo, v), max(hi, v)
	}
	return hi - lo
}

func gitOut(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("git %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}
