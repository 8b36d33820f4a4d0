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
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hotreload/plugin-operator/controllers"
)

// TestExampleImage builds the example plugin host's image the way `make example-image`
// does and checks that the operator runs it as it runs its own: only /pluginhost (static),
// the Dockerfile's user and working directory, the user the rendered pod runs as, and a
// /pluginhost that takes exactly the project's pluginhost flags, so the Deployment's
// command line works unchanged.
func TestExampleImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example host; not run under -short")
	}
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	project := parseFinalStage(t, string(b))

	bin := t.TempDir()
	const ref = "example.com/plugin-operator/featureflags:image-test"
	cmd := exec.Command("make", "--no-print-directory", "example-image", "EXAMPLE_IMG="+ref, "LOCALBIN="+bin)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make example-image: %v\n%s", err, out)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(bin, "example-image.tar"), &tag)
	if err != nil {
		t.Fatalf("bin/example-image.tar is not a docker-archive holding %s: %v", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	// The rendered Deployment runs /pluginhost as RunAsID (controllers/render_workload.go).
	if want := []string{"/pluginhost"}; !slices.Equal(cf.Config.Entrypoint, want) {
		t.Errorf("entry point %q, want %q", cf.Config.Entrypoint, want)
	}
	if cf.Config.User != project.user {
		t.Errorf("user %q, the project image's (Dockerfile) %q", cf.Config.User, project.user)
	}
	if want := fmt.Sprintf("%d:%d", controllers.RunAsID, controllers.RunAsID); cf.Config.User != want {
		t.Errorf("user %q, the rendered pod runs as %s", cf.Config.User, want)
	}
	if cf.Config.WorkingDir != project.workdir {
		t.Errorf("working directory %q, the Dockerfile's %q", cf.Config.WorkingDir, project.workdir)
	}

	files, contents := flatten(t, img)
	if _, ok := files["/manager"]; ok {
		t.Error("the example image holds /manager; it is a plugin host only")
	}
	h, ok := files["/pluginhost"]
	if !ok {
		t.Fatal("the example image has no /pluginhost")
	}
	if h.Mode&0o111 == 0 {
		t.Errorf("/pluginhost is not executable: %o", h.Mode)
	}
	example := filepath.Join(t.TempDir(), "pluginhost")
	if err := os.WriteFile(example, contents["/pluginhost"], 0o755); err != nil {
		t.Fatal(err)
	}
	checkStaticBinary(t, example)

	// Same flags as the project's pluginhost, which the rendered Deployment's args are
	// written for (TestImageBinaries runs that one with them).
	ours := filepath.Join(t.TempDir(), "pluginhost")
	build := exec.Command("go", "build", "-o", ours, "./cmd/pluginhost")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pluginhost: %v\n%s", err, out)
	}
	help := func(bin string) []byte {
		out, err := exec.Command(bin, "-help").CombinedOutput()
		if err != nil {
			t.Fatalf("%s -help: %v\n%s", bin, err, out)
		}
		return out
	}
	if a, b := help(example), help(ours); !bytes.Equal(a, b) {
		t.Errorf("the example's /pluginhost -help differs from cmd/pluginhost's:\n%s\n---\n%s", a, b)
	}
	if _, ok := contents["/etc/passwd"]; !ok || !strings.Contains(string(contents["/etc/passwd"]), ":65532:") {
		t.Errorf("/etc/passwd lacks the nonroot user:\n%s", contents["/etc/passwd"])
	}
}
