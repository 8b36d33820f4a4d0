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
	"github.com/hotreload/plugin-operator/internal/typeschema"
	"github.com/hotreload/plugin-operator/pkg/plugins/counter"
	"github.com/hotreload/plugin-operator/pkg/plugins/ratelimit"
)

// builtinTypes are the types of the project's own pluginhost image, as its pods advertise
// them. Only tests link plugin code; the manager learns types from the hosts.
func builtinTypes() *typeschema.Set {
	set, err := typeschema.Compile(typeschema.Declarations(counter.Factory{}, ratelimit.Factory{}))
	if err != nil {
		panic(err)
	}
	return set
}
