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

package pluginconfig

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
)

// Encode renders cfg as canonical config.json: two-space indentation, fields in schema
// order, option keys sorted, a trailing newline. The same Config always gives the same bytes,
// so the revision changes exactly when the content does. Callers that build a Config in Go
// call SetDefaults first so that every field is explicit.
func Encode(cfg *Config) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RevisionPrefix starts every revision, like an image digest.
const RevisionPrefix = "sha256:"

// Revision identifies config bytes: "sha256:" and the hex sha256 of exactly what the host
// reads. The operator stamps it on pods and the host reports the revision it applied.
func Revision(data []byte) string {
	sum := sha256.Sum256(data)
	return RevisionPrefix + hex.EncodeToString(sum[:])
}

// ShortRevision is the first 12 hex digits of a revision, for logs and printer columns.
func ShortRevision(rev string) string {
	rev = strings.TrimPrefix(rev, RevisionPrefix)
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
