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

// Command pluginhost runs plugin instances from a seed-format config.json, serves their HTTP
// API and reloads the file in place when it changes (see docs/pluginhost.md). It is the SDK's
// entry point (pkg/pluginhost) with the built-in plugin types; a custom host binary is the
// same few lines with its own list (docs/plugins.md).
package main

import (
	"github.com/hotreload/plugin-operator/pkg/pluginhost"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
	"github.com/hotreload/plugin-operator/pkg/plugins/ratelimit"
)

func main() {
	pluginhost.Main(
		counter.Factory{},
		ratelimit.Factory{},
	)
}
