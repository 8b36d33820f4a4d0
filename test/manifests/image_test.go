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

package manifests_test

import (
	"bufio"
	"debug/buildinfo"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// dockerfile is the parsed part of the Dockerfile that the tests check.
type dockerfile struct {
	text string
	// env of the builder stage (ENV lines), and its `go build` command line.
	env     []string
	goBuild string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := dockerfile{text: string(b)}
	sc := bufio.NewScanner(strings.NewReader(df.text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "ENV "); ok {
			df.env = append(df.env, strings.Fields(rest)...)
		}
		if strings.HasPrefix(line, "go build ") {
			if df.goBuild != "" {
				t.Fatal("the Dockerfile has more than one `go build`")
			}
			df.goBuild = line
		}
	}
	if df.goBuild == "" {
		t.Fatal("no line starting with `go build` in the Dockerfile")
	}
	return df
}

// TestDockerfile checks the decisions the Dockerfile documents: one image with both
// programs, static (CGO_ENABLED=0), reproducible flags, BuildKit cache mounts, distroless
// static, non-root.
func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)
	for _, want := range []string{
		"ARG GO_IMAGE=golang:1.26",
		"ARG BASE_IMAGE=gcr.io/distroless/static:nonroot",
		"FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS builder",
		"FROM ${BASE_IMAGE}",
		"--mount=type=cache,target=/go/pkg/mod",
		"--mount=type=cache,target=/root/.cache/go-build",
		"COPY --from=builder /out/manager /manager",
		"COPY --from=builder /out/pluginhost /pluginhost",
		"USER 65532:65532",
		`ENTRYPOINT ["/manager"]`,
	} {
		if !strings.Contains(df.text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local"} {
		if !contains(df.env, want) {
			t.Errorf("Dockerfile ENV %q lacks %s", df.env, want)
		}
	}
	for _, want := range []string{"-trimpath", `-ldflags="-s -w"`, "./cmd/manager", "./cmd/pluginhost"} {
		if !strings.Contains(df.goBuild, want) {
			t.Errorf("Dockerfile `%s` lacks %s", df.goBuild, want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestImageBinaries does what the Dockerfile's builder stage does, without Docker: it copies
// the build context that .dockerignore leaves into an empty directory, runs the Dockerfile's
// own `go build` line there with the Dockerfile's ENV, and checks the two binaries: static,
// stripped, built with the documented settings. Then it runs them: each rendered manager
// command line (config/default and the chart scenarios) must be accepted by the manager's
// flag parser, and /pluginhost must start.
func TestImageBinaries(t *testing.T) {
	df := readDockerfile(t)
	ctxDir := t.TempDir()
	n := copyBuildContext(t, ctxDir)
	t.Logf("build context: %d files", n)
	for _, f := range []string{"go.mod", "go.sum", "cmd/manager", "cmd/pluginhost"} {
		if _, err := os.Stat(filepath.Join(ctxDir, f)); err != nil {
			t.Fatalf(".dockerignore leaves %s out of the build context", f)
		}
	}
	for _, f := range []string{"bin", ".git", "charts", "docs", "test", "hack", "examples", "api/v1alpha1/admission_test.go"} {
		if _, err := os.Stat(filepath.Join(ctxDir, f)); err == nil {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}

	out := filepath.Join(t.TempDir(), "out") + "/"
	cmdline := strings.Replace(df.goBuild, "-o /out/ ", "-o "+out+" ", 1)
	if cmdline == df.goBuild {
		t.Fatalf("the Dockerfile's `%s` no longer writes to /out/", df.goBuild)
	}
	cmd := exec.Command("sh", "-c", cmdline)
	cmd.Dir = ctxDir
	cmd.Env = append(os.Environ(), df.env...)
	cmd.Env = append(cmd.Env, "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build fails in the .dockerignore'd context: %s: %v\n%s", cmdline, err, b)
	}

	for _, name := range []string{"manager", "pluginhost"} {
		bin := filepath.Join(out, name)
		checkStaticBinary(t, bin)
	}

	// The manager accepts every command line we render: its flag parser stops at -help
	// (exit 0) only if every flag before it exists and its value parses.
	needEnv(t)
	lines := map[string][]string{"config/default": renderedManagerArgs(t, kustomize(t, "config/default"))}
	for _, sc := range chartScenarios(t) {
		lines["chart: "+sc.name] = renderedManagerArgs(t, helmTemplate(t, sc.args...))
	}
	for what, args := range lines {
		cmd := exec.Command(filepath.Join(out, "manager"), append(args, "-help")...)
		b, err := cmd.CombinedOutput()
		if err != nil || strings.Contains(string(b), "flag provided but not defined") || strings.Contains(string(b), "invalid value") {
			t.Errorf("%s: the manager refuses its rendered arguments %q: %v\n%s", what, args, err, lastLines(b, 5))
		}
	}
	if b, err := exec.Command(filepath.Join(out, "pluginhost"), "-help").CombinedOutput(); err != nil {
		t.Errorf("pluginhost -help: %v\n%s", err, lastLines(b, 5))
	}
}

// renderedManagerArgs returns the manager's args with $(VAR) expanded from its env.
func renderedManagerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	deps := ofKind(objs, "Deployment")
	if len(deps) == 0 {
		t.Fatal("no Deployment rendered")
	}
	dep := toTyped[appsv1.Deployment](t, deps[0])
	c := managerContainer(t, dep)
	vars := map[string]string{}
	for _, e := range c.Env {
		vars[e.Name] = e.Value
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, envVarRef.ReplaceAllStringFunc(a, func(ref string) string { return vars[ref[2:len(ref)-1]] }))
	}
	return args
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkStaticBinary checks that bin is a static, stripped Go binary built with CGO_ENABLED=0
// and -trimpath: it runs on distroless/static (no libc).
func checkStaticBinary(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: it is dynamically linked", filepath.Base(bin))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s links shared libraries %q", filepath.Base(bin), libs)
	}
	for _, s := range []string{".symtab", ".debug_info"} {
		if f.Section(s) != nil {
			t.Errorf("%s has a %s section: not built with -ldflags=\"-s -w\"", filepath.Base(bin), s)
		}
	}
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	// Go leaves -ldflags out of the build info under -trimpath; the sections above show it.
	for k, v := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != v {
			t.Errorf("%s built with %s=%q, want %q", filepath.Base(bin), k, settings[k], v)
		}
	}
	if _, ok := settings["vcs.revision"]; ok {
		t.Errorf("%s is VCS-stamped: the build depends on the .git directory", filepath.Base(bin))
	}
}

// copyBuildContext copies into dst the files of the repository that .dockerignore leaves in
// Docker's build context, and returns how many.
func copyBuildContext(t *testing.T, dst string) int {
	t.Helper()
	patterns := readDockerignore(t)
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || ignored(patterns, rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		n++
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ignorePattern is one line of .dockerignore.
type ignorePattern struct {
	re        *regexp.Regexp
	exclusion bool // a "!pattern": puts matching files back
}

func readDockerignore(t *testing.T) []ignorePattern {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var out []ignorePattern
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			p.exclusion, line = true, rest
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		p.re = regexp.MustCompile(dockerPatternRegexp(line))
		out = append(out, p)
	}
	return out
}

// dockerPatternRegexp translates a .dockerignore pattern the way Docker's patternmatcher does:
// "**" matches any number of directories (also none), "*" anything but '/', "?" one
// character but '/'.
func dockerPatternRegexp(p string) string {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
			}
			if i+1 == len(p) {
				b.WriteString(".*")
			} else {
				b.WriteString("(.*/)?")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return b.String()
}

// ignored applies the patterns in order, the last match winning; a pattern that matches a
// parent directory matches the file too (Docker's MatchesOrParentMatches).
func ignored(patterns []ignorePattern, rel string) bool {
	parts := strings.Split(rel, "/")
	out := false
	for _, p := range patterns {
		match := false
		for i := len(parts); i > 0 && !match; i-- {
			match = p.re.MatchString(strings.Join(parts[:i], "/"))
		}
		if match {
			out = !p.exclusion
		}
	}
	return out
}

func TestDockerPatterns(t *testing.T) {
	patterns := []ignorePattern{
		{re: regexp.MustCompile(dockerPatternRegexp("**"))},
		{re: regexp.MustCompile(dockerPatternRegexp("**/*.go")), exclusion: true},
		{re: regexp.MustCompile(dockerPatternRegexp("**/*_test.go"))},
		{re: regexp.MustCompile(dockerPatternRegexp("hack/**"))},
		{re: regexp.MustCompile(dockerPatternRegexp("go.mod")), exclusion: true},
	}
	for path, want := range map[string]bool{
		"go.mod": false, "hack/tools/go.mod": true, "main.go": false, "cmd/manager/main.go": false,
		"cmd/manager/main_test.go": true, "hack/chartgen/main.go": true, "README.md": true,
	} {
		if got := ignored(patterns, path); got != want {
			t.Errorf("ignored(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestDockerBuildNeedsDaemon checks that `make docker-build` says what is missing when
// there is no Docker daemon (simulated with CONTAINER_TOOL=false, whose `info` fails).
func TestDockerBuildNeedsDaemon(t *testing.T) {
	for _, target := range []string{"docker-build", "docker-push"} {
		cmd := exec.Command("make", "--no-print-directory", target, "CONTAINER_TOOL=false", "IMG=example.com/po:test")
		cmd.Dir = root
		b, err := cmd.CombinedOutput()
		if err == nil {
			t.Errorf("make %s without a daemon succeeded:\n%s", target, b)
			continue
		}
		if !strings.Contains(string(b), target+" needs a running Docker daemon") {
			t.Errorf("make %s without a daemon: output does not say what is missing:\n%s", target, b)
		}
	}
}
