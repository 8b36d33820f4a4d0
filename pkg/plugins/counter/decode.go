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

package counter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

const valueBodyHint = `the body is {"value": N} with N an integer (1 when omitted)`

// DecodeValue reads the value of an increment body. An empty body or {} means 1. Errors wrap
// plugin.ErrInvalidRequest. The common
// shape {"value": N} is parsed without allocating; anything else goes through encoding/json,
// which gives the precise error. Both paths accept exactly the same documents (fuzzed).
func DecodeValue(body []byte) (int64, error) {
	if v, ok := fastValue(body); ok {
		return v, nil
	}
	v, err := slowValue(body)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", plugin.ErrInvalidRequest, err)
	}
	return v, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// fastValue handles whitespace, {}, and {"value": <integer>} with no escapes; ok=false means
// "let the slow path decide", never "invalid".
func fastValue(b []byte) (int64, bool) {
	i := 0
	skip := func() {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	skip()
	if i == len(b) {
		return 1, true
	}
	if b[i] != '{' {
		return 0, false
	}
	i++
	skip()
	v := int64(1)
	if i < len(b) && b[i] == '"' {
		const key = `"value"`
		if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
			return 0, false
		}
		i += len(key)
		skip()
		if i == len(b) || b[i] != ':' {
			return 0, false
		}
		i++
		skip()
		neg := false
		if i < len(b) && b[i] == '-' {
			neg = true
			i++
		}
		start := i
		var u uint64
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if u > (math.MaxUint64-9)/10 {
				return 0, false
			}
			u = u*10 + uint64(b[i]-'0')
			i++
		}
		digits := i - start
		if digits == 0 || (digits > 1 && b[start] == '0') {
			return 0, false
		}
		switch {
		case !neg && u <= math.MaxInt64:
			v = int64(u)
		case neg && u <= math.MaxInt64+1:
			v = -int64(u-1) - 1
		default:
			return 0, false
		}
		skip()
	}
	if i == len(b) || b[i] != '}' {
		return 0, false
	}
	i++
	skip()
	return v, i == len(b)
}

func slowValue(body []byte) (int64, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return 1, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req struct {
		Value json.RawMessage `json:"value"`
	}
	if err := dec.Decode(&req); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return 0, fmt.Errorf("request body must be a JSON object: %s", valueBodyHint)
		case bytes.HasPrefix(bytes.TrimSpace([]byte(err.Error())), []byte("json: unknown field")):
			return 0, fmt.Errorf("%s in request body: %s", err.Error()[len("json: "):], valueBodyHint)
		default:
			return 0, fmt.Errorf("malformed JSON body: %v", err)
		}
	}
	if dec.More() {
		return 0, fmt.Errorf("malformed JSON body: unexpected data after the object")
	}
	if _, err := dec.Token(); err == nil {
		return 0, fmt.Errorf("malformed JSON body: unexpected data after the object")
	}
	raw := bytes.TrimSpace(req.Value)
	if len(raw) == 0 || string(raw) == "null" {
		return 1, nil
	}
	if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, fmt.Errorf("value must be an integer, got %s", raw)
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("value %s is out of the int64 range", raw)
		}
		return 0, fmt.Errorf("value must be an integer, got %s", raw)
	}
	return v, nil
}
