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

// stripComments blanks out // line and /* block */ comments outside strings, keeping every
// newline so that error positions still point at the right line and column. The seed's
// walkthrough edits config.json with a "// Changed from 1 to 10" note, so the host accepts
// such comments. An unterminated block comment is left in place for the JSON parser to
// report.
func stripComments(data []byte) []byte {
	var out []byte // allocated on the first comment only
	inString, escaped := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		if c == '"' {
			inString = true
			continue
		}
		if c != '/' || i+1 >= len(data) || (data[i+1] != '/' && data[i+1] != '*') {
			continue
		}
		end := -1
		if data[i+1] == '/' {
			end = i + 2
			for end < len(data) && data[end] != '\n' {
				end++
			}
		} else {
			for j := i + 2; j+1 < len(data); j++ {
				if data[j] == '*' && data[j+1] == '/' {
					end = j + 2
					break
				}
			}
			if end < 0 {
				return orig(out, data)
			}
		}
		if out == nil {
			out = append([]byte(nil), data...)
		}
		for k := i; k < end; k++ {
			if out[k] != '\n' {
				out[k] = ' '
			}
		}
		i = end - 1
	}
	return orig(out, data)
}

func orig(out, data []byte) []byte {
	if out == nil {
		return data
	}
	return out
}
