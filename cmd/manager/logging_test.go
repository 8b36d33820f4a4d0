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

package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// countedField counts how often zap encodes it.
type countedField struct{ encoded *int }

func (f countedField) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	*f.encoded++
	enc.AddString("id", "x")
	return nil
}

func TestLazyWithCoreEncodesFieldsOnlyWhenWritten(t *testing.T) {
	var out bytes.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&out), zapcore.InfoLevel)
	logger := zap.New(core, zap.WrapCore(func(c zapcore.Core) zapcore.Core { return lazyWithCore{c} }))

	encoded := 0
	quiet := logger.With(zap.Object("first", countedField{&encoded})).With(zap.String("second", "2"))
	quiet.Debug("below the level")
	if encoded != 0 || out.Len() != 0 {
		t.Fatalf("a logger that wrote nothing encoded its fields %d times and wrote %q", encoded, out.String())
	}

	loud := logger.With(zap.Object("first", countedField{&encoded})).With(zap.String("second", "2"))
	loud.Info("written", zap.String("third", "3"))
	loud.Info("again")
	if encoded != 1 {
		t.Errorf("fields given with With were encoded %d times for two entries, want once", encoded)
	}
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("want 2 entries, got %q", out.String())
	}
	var first map[string]any
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if first["msg"] != "written" || first["second"] != "2" || first["third"] != "3" {
		t.Errorf("entry %v: want msg, second and third", first)
	}
	if f, ok := first["first"].(map[string]any); !ok || f["id"] != "x" {
		t.Errorf("entry %v: want first.id=x", first)
	}
}
