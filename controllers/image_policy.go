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
	"fmt"
	"strings"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// hostImage is the runtime image a PluginHost's pods run.
func hostImage(host *v1alpha1.PluginHost, defaultImage string) string {
	if host.Spec.Image != "" {
		return host.Spec.Image
	}
	return defaultImage
}

// imageAllowed reports whether image matches the default host image or an entry of allowed:
// an entry is an exact image, a prefix followed by "*", or "*" alone (any image).
func imageAllowed(image, defaultImage string, allowed []string) bool {
	if image == defaultImage {
		return true
	}
	for _, a := range allowed {
		if prefix, ok := strings.CutSuffix(a, "*"); ok {
			if strings.HasPrefix(image, prefix) {
				return true
			}
		} else if image == a {
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
