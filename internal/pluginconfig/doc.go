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

// Package pluginconfig owns the config.json schema shared by the operator and the plugin
// host: the Go types of the seed format, strict decoding with errors that name the JSON path,
// defaults, validation, canonical encoding and the revision (sha256 of the bytes).
//
// The operator renders exactly the bytes the host parses, with this code, so a config that
// the operator accepts is a config the host accepts.
package pluginconfig
