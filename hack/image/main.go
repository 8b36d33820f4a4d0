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

// Command image writes container images as docker-archive tarballs without a Docker
// daemon, with go-containerregistry. `make image` uses it for the project's image: the
// same content, user and entry point as the Dockerfile (whose base, distroless
// static:nonroot, is reproduced as a small layer with the nonroot user), so that
// `ctr images import` or `kind load image-archive` can load it where no daemon runs.
// `make cluster` uses it for the pod sandbox image (--pause). Without --manager it writes a
// host-only image (`make example-image`): a custom pluginhost at /pluginhost, the command
// the operator's Deployment runs, on the same base and user, with /pluginhost as the entry
// point.
//
//	go run ./hack/image --manager bin/manager --pluginhost bin/pluginhost --tag T --out bin/image.tar
//	go run ./hack/image --pluginhost bin/featureflags --tag T --out bin/featureflags-image.tar
//	go run ./hack/image --pause bin/pause --tag T --out bin/pause.tar
//
// The output is reproducible: every timestamp is the Unix epoch, files are sorted.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The Dockerfile's final stage, which test/manifests compares with the image this writes.
const (
	nonrootUser = "65532:65532"
	workingDir  = "/"
)

var labels = map[string]string{
	"org.opencontainers.image.title":       "plugin-operator",
	"org.opencontainers.image.description": "Kubernetes operator for hot-reloaded plugin instances: /manager (operator) and /pluginhost (runtime)",
	"org.opencontainers.image.source":      "https://github.com/hotreload/plugin-operator",
	"org.opencontainers.image.licenses":    "Apache-2.0",
}

// hostOnlyLabels label a host-only image (no /manager).
var hostOnlyLabels = map[string]string{
	"org.opencontainers.image.title":       "plugin-operator pluginhost",
	"org.opencontainers.image.description": "A plugin host built with the plugin-operator SDK (pkg/pluginhost): /pluginhost, for a PluginHost's spec.image",
	"org.opencontainers.image.source":      "https://github.com/hotreload/plugin-operator",
	"org.opencontainers.image.licenses":    "Apache-2.0",
}

// file is one entry of a layer.
type file struct {
	path     string
	mode     int64
	uid, gid int
	dir      bool
	body     []byte
}

// distrolessBase is what the Dockerfile's runtime base (gcr.io/distroless/static:nonroot)
// provides that the programs rely on: the nonroot user and group, its home, /tmp.
func distrolessBase() []file {
	return []file{
		{path: "etc", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, body: []byte("root:x:0:0:root:/root:/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
			"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{path: "home", mode: 0o755, dir: true},
		{path: "home/nonroot", mode: 0o700, uid: 65532, gid: 65532, dir: true},
		{path: "root", mode: 0o700, dir: true},
		{path: "tmp", mode: 0o1777, dir: true},
	}
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	manager := fs.String("manager", "", "the manager binary (/manager, the entry point); without it the image holds only /pluginhost")
	pluginhost := fs.String("pluginhost", "", "the pluginhost binary (/pluginhost): the project's, or a custom host built with pkg/pluginhost")
	pause := fs.String("pause", "", "write a pod sandbox image of this pause binary instead")
	tag := fs.String("tag", "", "image reference to record in the archive, e.g. example.com/plugin-operator:e2e")
	out := fs.String("out", "", "output docker-archive tarball")
	arch := fs.String("arch", runtime.GOARCH, "image architecture (the binaries' GOARCH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || *out == "" {
		return errors.New("--tag and --out are required")
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		return fmt.Errorf("--tag: %w", err)
	}
	var img v1.Image
	switch {
	case *pause != "":
		img, err = pauseImage(*pause, *arch)
	case *pluginhost != "":
		img, err = projectImage(*manager, *pluginhost, *arch)
	default:
		return errors.New("give --pluginhost (and --manager for the project's image), or --pause")
	}
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", *out, ref, digest)
	return nil
}

// projectImage is the project's image, or without manager a host-only image: the same
// base, user and working directory, /pluginhost as the entry point (the Deployment names
// /pluginhost as its command anyway; the entry point serves `docker run` and `ctr run`).
func projectImage(manager, pluginhost, arch string) (v1.Image, error) {
	var bins []file
	for _, b := range []struct{ src, dst string }{{manager, "manager"}, {pluginhost, "pluginhost"}} {
		if b.src == "" {
			continue
		}
		body, err := os.ReadFile(b.src)
		if err != nil {
			return nil, err
		}
		bins = append(bins, file{path: b.dst, mode: 0o755, body: body})
	}
	entrypoint, lbl := "/manager", labels
	if manager == "" {
		entrypoint, lbl = "/pluginhost", hostOnlyLabels
	}
	return build(arch, v1.Config{
		Entrypoint: []string{entrypoint},
		User:       nonrootUser,
		WorkingDir: workingDir,
		Env:        []string{"PATH=/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin"},
		Labels:     lbl,
	}, distrolessBase(), bins)
}

func pauseImage(pause, arch string) (v1.Image, error) {
	body, err := os.ReadFile(pause)
	if err != nil {
		return nil, err
	}
	return build(arch, v1.Config{Entrypoint: []string{"/pause"}, User: "65535:65535", WorkingDir: "/"},
		[]file{{path: "pause", mode: 0o755, body: body}})
}

// build stacks one layer per file list under cfg.
func build(arch string, cfg v1.Config, layers ...[]file) (v1.Image, error) {
	img := empty.Image
	for _, files := range layers {
		b, err := tarOf(files)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Config = arch, "linux", cfg
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	return mutate.ConfigFile(img, cf)
}

func tarOf(files []file) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.path, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag, h.Name = tar.TypeDir, f.path+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
