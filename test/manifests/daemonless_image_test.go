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
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// finalStage is what the Dockerfile's last stage declares about the image.
type finalStage struct {
	entrypoint []string
	user       string
	workdir    string
	labels     map[string]string
	// copies are the COPY --from=builder destinations: the programs in the image.
	copies []string
}

var (
	labelPair = regexp.MustCompile(`([a-z0-9.]+)="([^"]*)"`)
	copyLine  = regexp.MustCompile(`^COPY --from=builder \S+ (\S+)$`)
)

func parseFinalStage(t *testing.T, text string) finalStage {
	t.Helper()
	// Join continuation lines, then keep what follows the last FROM.
	text = strings.ReplaceAll(text, "\\\n", " ")
	lines := strings.Split(text, "\n")
	last := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	st := finalStage{labels: map[string]string{}}
	for _, l := range lines[last:] {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "ENTRYPOINT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "ENTRYPOINT ")), &st.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT is not exec form: %s", l)
			}
		case strings.HasPrefix(l, "USER "):
			st.user = strings.TrimPrefix(l, "USER ")
		case strings.HasPrefix(l, "WORKDIR "):
			st.workdir = strings.TrimPrefix(l, "WORKDIR ")
		case strings.HasPrefix(l, "LABEL "):
			for _, m := range labelPair.FindAllStringSubmatch(l, -1) {
				st.labels[m[1]] = m[2]
			}
		case copyLine.MatchString(l):
			st.copies = append(st.copies, copyLine.FindStringSubmatch(l)[1])
		}
	}
	if len(st.entrypoint) == 0 || st.user == "" || len(st.copies) == 0 {
		t.Fatalf("cannot read the Dockerfile's final stage: %+v", st)
	}
	return st
}

// TestDaemonlessImageMatchesDockerfile builds the image the way `make image` does (no
// Docker: go-containerregistry writes a docker-archive) and checks it against the
// Dockerfile's final stage: the same entry point, user, working directory, labels and
// programs (static binaries), and a passwd entry for the user, as the distroless base has.
func TestDaemonlessImageMatchesDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds both programs; not run under -short")
	}
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	want := parseFinalStage(t, string(b))

	bin := t.TempDir()
	const ref = "example.com/plugin-operator:image-test"
	cmd := exec.Command("make", "--no-print-directory", "image", "IMG="+ref, "LOCALBIN="+bin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(bin, "image.tar"), &tag)
	if err != nil {
		t.Fatalf("bin/image.tar is not a docker-archive holding %s: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	if !slices.Equal(cf.Config.Entrypoint, want.entrypoint) {
		t.Errorf("entry point %q, the Dockerfile's %q", cf.Config.Entrypoint, want.entrypoint)
	}
	if cf.Config.User != want.user {
		t.Errorf("user %q, the Dockerfile's %q", cf.Config.User, want.user)
	}
	if cf.Config.WorkingDir != want.workdir {
		t.Errorf("working directory %q, the Dockerfile's %q", cf.Config.WorkingDir, want.workdir)
	}
	if !maps.Equal(cf.Config.Labels, want.labels) {
		t.Errorf("labels %v, the Dockerfile's %v", cf.Config.Labels, want.labels)
	}

	files, contents := flatten(t, img)
	extracted := t.TempDir()
	for _, dst := range want.copies {
		h, ok := files[dst]
		if !ok {
			t.Errorf("the image has no %s (the Dockerfile copies it)", dst)
			continue
		}
		if h.Mode&0o111 == 0 {
			t.Errorf("%s is not executable: %o", dst, h.Mode)
		}
		f := filepath.Join(extracted, filepath.Base(dst))
		if err := os.WriteFile(f, contents[dst], 0o755); err != nil {
			t.Fatal(err)
		}
		checkStaticBinary(t, f)
	}
	uid := strings.Split(want.user, ":")[0]
	if !regexp.MustCompile(`(?m)^[a-z]+:x:` + uid + `:`).Match(contents["/etc/passwd"]) {
		t.Errorf("/etc/passwd has no user %s:\n%s", uid, contents["/etc/passwd"])
	}
	if h := files["/tmp"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("/tmp missing or not 1777 (distroless has it): %+v", h)
	}
}

// flatten returns the image's flattened file system: the headers and the regular files'
// contents by absolute path.
func flatten(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	files := map[string]*tar.Header{}
	contents := map[string][]byte{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := "/" + strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		files[p] = h
		if h.Typeflag == tar.TypeReg {
			if contents[p], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return files, contents
}
