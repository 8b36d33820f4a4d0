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

package controllers

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// hostImage is the runtime image a PluginHost's pods run.
func hostImage(host *v1alpha1.PluginHost, defaultImage string) string {
	if host.Spec.Image != "" {
		return host.Spec.Image
	}
	return defaultImage
}

// An entry of --allowed-host-images (Options.AllowedHostImages) is one of:
//
//   - "*": any image;
//   - a registry, "registry.example.com" or "localhost:5000": any image of that registry;
//   - a repository prefix, "registry.example.com/team" or "registry.example.com/team/host":
//     that repository and every repository under it, whole path segments only
//     ("registry.example.com/team" allows registry.example.com/team/host but not
//     registry.example.com/team-evil/host), with any tag or digest; "registry.example.com/team/*"
//     is the same entry written as a glob;
//   - a repository with a tag, "registry.example.com/team/host:v2": that tag only (an image by
//     digest does not match it, whatever tag it also names);
//   - a repository with a digest, "registry.example.com/team/host@sha256:…": that digest only.
//
// Entries and images are parsed as image references (go-containerregistry's pkg/name) and
// compared by registry, repository, tag and digest, not as strings: "docker.io/library/x",
// "index.docker.io/library/x" and "x" are the same repository. An entry must name its registry
// (its first segment has a "." or a ":" or is "localhost"), so that it is never read as a Docker
// Hub repository by mistake. Any other "*" ("registry.example.com/team/host*") and anything
// that does not parse is invalid: the manager refuses to start, naming the entry
// (ValidateAllowedHostImages).
type imageRule struct {
	any      bool
	registry string
	// repository is "" for a registry entry.
	repository  string
	tag, digest string
}

// ValidateAllowedHostImages checks the entries of --allowed-host-images (see imageRule) and
// returns an error naming the first invalid one.
func ValidateAllowedHostImages(entries []string) error {
	for _, e := range entries {
		if _, err := parseImageRule(e); err != nil {
			return fmt.Errorf("--allowed-host-images entry %q: %w", e, err)
		}
	}
	return nil
}

func parseImageRule(entry string) (imageRule, error) {
	if entry == "*" {
		return imageRule{any: true}, nil
	}
	body, glob := strings.CutSuffix(entry, "/*")
	if strings.Contains(body, "*") {
		return imageRule{}, errors.New(`"*" may only be the whole entry or its last segment ("registry.example.com/team/*"); ` +
			`a repository prefix matches whole path segments: write "registry.example.com/team" for every image under it`)
	}
	first, rest, hasPath := strings.Cut(body, "/")
	if first != "localhost" && !strings.ContainsAny(first, ".:") {
		return imageRule{}, errors.New(`it does not start with a registry (a host name with a "." or a port, or localhost); ` +
			`name it, e.g. "docker.io/library/` + body + `"`)
	}
	if !hasPath || rest == "" {
		if hasPath && !glob {
			return imageRule{}, errors.New("a registry is written without a trailing slash")
		}
		reg, err := name.NewRegistry(first, name.StrictValidation)
		if err != nil {
			return imageRule{}, err
		}
		return imageRule{registry: reg.RegistryStr()}, nil
	}
	lastSegment := body[strings.LastIndex(body, "/")+1:]
	if glob && (strings.Contains(body, "@") || strings.Contains(lastSegment, ":")) {
		return imageRule{}, errors.New(`"/*" follows a registry or a repository, never a tag or a digest`)
	}
	switch {
	case strings.Contains(body, "@"):
		d, err := name.NewDigest(body)
		if err != nil {
			return imageRule{}, err
		}
		return imageRule{registry: d.RegistryStr(), repository: d.RepositoryStr(), digest: d.DigestStr()}, nil
	case strings.Contains(lastSegment, ":"):
		t, err := name.NewTag(body)
		if err != nil {
			return imageRule{}, err
		}
		return imageRule{registry: t.RegistryStr(), repository: t.RepositoryStr(), tag: t.TagStr()}, nil
	default:
		r, err := name.NewRepository(body)
		if err != nil {
			return imageRule{}, err
		}
		return imageRule{registry: r.RegistryStr(), repository: r.RepositoryStr()}, nil
	}
}

// matches reports whether the parsed image ref satisfies the rule.
func (r imageRule) matches(ref name.Reference) bool {
	if r.any {
		return true
	}
	repo := ref.Context()
	if !strings.EqualFold(repo.RegistryStr(), r.registry) {
		return false
	}
	if r.repository == "" {
		return true
	}
	switch {
	case r.digest != "":
		d, ok := ref.(name.Digest)
		return ok && repo.RepositoryStr() == r.repository && d.DigestStr() == r.digest
	case r.tag != "":
		t, ok := ref.(name.Tag)
		return ok && repo.RepositoryStr() == r.repository && t.TagStr() == r.tag
	}
	return repo.RepositoryStr() == r.repository || strings.HasPrefix(repo.RepositoryStr(), r.repository+"/")
}

// imageAllowed reports whether image is the default host image or matches an entry of
// allowed (see imageRule). Invalid entries match nothing (the manager does not start with
// one), and neither does an image that does not parse as a reference.
func imageAllowed(image, defaultImage string, allowed []string) bool {
	if image == defaultImage {
		return true
	}
	var ref name.Reference
	for _, a := range allowed {
		rule, err := parseImageRule(a)
		if err != nil {
			continue
		}
		if rule.any {
			return true
		}
		if ref == nil {
			if ref, err = name.ParseReference(image); err != nil {
				return false
			}
		}
		if rule.matches(ref) {
			return true
		}
	}
	return false
}

// imageRefusal explains why host may not run its spec.image, or is "" when it may. The
// host's pods get the namespace's auth Secrets' keys mounted and serve its plugins, so the
// image is chosen by the operator's installer, not by whoever may edit PluginHosts.
func imageRefusal(host *v1alpha1.PluginHost, defaultImage string, allowed []string) string {
	img := hostImage(host, defaultImage)
	if imageAllowed(img, defaultImage, allowed) {
		return ""
	}
	return fmt.Sprintf("spec.image %q is not allowed by the operator (--allowed-host-images, chart value security.allowedHostImages: %s); "+
		"nothing is applied and the last accepted workload keeps running. Leave spec.image empty for the default image %q",
		img, describeAllowed(allowed), defaultImage)
}

func describeAllowed(allowed []string) string {
	if len(allowed) == 0 {
		return "empty"
	}
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, ", ")
}
