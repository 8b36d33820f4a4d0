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

// Command featureflags is a plugin host that carries the featureflags type besides the
// built-in counter: the project's pluginhost with one more type. Built into an image at
// /pluginhost, it runs unchanged as a PluginHost's spec.image.
package main

import (
	"github.com/hotreload/plugin-operator/examples/featureflags/featureflags"
	"github.com/hotreload/plugin-operator/pkg/pluginhost"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
)

func main() {
	pluginhost.Main(
		featureflags.Factory{},
		counter.Factory{},
	)
}
