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

// Package featureflags is an example plugin type written outside the operator's module,
// against its public SDK (pkg/plugin) only: feature flags, the case hot reload is for. A
// flag's settings change in the running host, with no restart, and the evaluation counts
// survive the change (and, with a state directory, restarts).
//
// Options:
//
//	{"flags": {"new-checkout": {"enabled": true, "percent": 25}}, "default": false}
//
// Operations:
//
//	GET /plugins/{name}/evaluate?flag=F&user=U  {"flag":F,"enabled":B,"reason":R}; counts the evaluation
//	GET /plugins/{name}/list                    every flag with its settings and evaluation count
//
// An unknown flag evaluates to options.default with reason "unknown flag" (it is not a 404):
// a client asking about a flag that was just removed from the config, or not added yet,
// gets the safe answer instead of an error path.
package featureflags

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"sync"

	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Type is the plugin type name, in config.json's "type" and a Plugin's spec.type.
const Type = "featureflags"

// Reasons an evaluation gives.
const (
	ReasonEnabled     = "enabled"
	ReasonDisabled    = "disabled"
	ReasonInRollout   = "in rollout"
	ReasonOutRollout  = "outside rollout"
	ReasonUnknownFlag = "unknown flag"
)

// MaxFlags bounds how many flags one instance holds (and so its list answer and counts).
const MaxFlags = 1000

// flagName is what a flag may be called: the schema's propertyNames pattern, checked again
// on the query's flag parameter.
var flagName = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Factory is the featureflags plugin type.
type Factory struct{}

var _ plugin.Factory = Factory{}

// Type implements plugin.Factory.
func (Factory) Type() string { return Type }

var operations = []plugin.Operation{
	// evaluate is a GET (it reads a flag) that counts: Mutating tells the host to save a
	// snapshot after it, so the counts survive a restart.
	{Name: "evaluate", Method: http.MethodGet, Mutating: true, Description: "evaluates ?flag=F for ?user=U (required when F rolls out to a percent of users) and counts the evaluation"},
	{Name: "list", Method: http.MethodGet, Description: "lists the flags, their settings and evaluation counts, and the default"},
}

// Operations implements plugin.Factory.
func (Factory) Operations() []plugin.Operation { return operations }

var optionsSchema = json.RawMessage(`{
  "type": "object",
  "properties": {
    "flags": {
      "description": "the flags by name",
      "type": "object",
      "maxProperties": 1000,
      "propertyNames": {
        "description": "a flag name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit, at most 63 characters",
        "pattern": "^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$"
      },
      "additionalProperties": {
        "type": "object",
        "properties": {
          "enabled": {
            "description": "whether the flag is on; false turns it off for every user whatever percent says",
            "type": "boolean"
          },
          "percent": {
            "description": "the share of users the enabled flag is on for, 0 to 100 (default 100); a user's share is decided by a stable hash of the flag and user names",
            "type": "integer",
            "minimum": 0,
            "maximum": 100
          }
        },
        "required": ["enabled"],
        "additionalProperties": false
      }
    },
    "default": {
      "description": "what a flag that is not in flags evaluates to (default false)",
      "type": "boolean"
    }
  },
  "additionalProperties": false
}`)

// OptionsSchema implements plugin.Factory.
func (Factory) OptionsSchema() json.RawMessage { return optionsSchema }

// Flag is one flag's settings.
type Flag struct {
	// Enabled is whether the flag is on.
	Enabled bool `json:"enabled"`
	// Percent is the share of users an enabled flag is on for; nil means 100.
	Percent *int `json:"percent,omitempty"`
}

// Options are an instance's options.
type Options struct {
	// Flags are the flags by name.
	Flags map[string]Flag `json:"flags"`
	// Default is what an unknown flag evaluates to.
	Default bool `json:"default"`
}

// parseOptions decodes the options and checks what the schema says again: New must not
// trust that every caller validated (a unit test, another host).
func parseOptions(spec plugin.Spec) (Options, error) {
	var o Options
	if err := plugin.DecodeOptions(spec, &o); err != nil {
		return o, err
	}
	if len(o.Flags) > MaxFlags {
		return o, fmt.Errorf("options.flags: %d flags, at most %d", len(o.Flags), MaxFlags)
	}
	for name, f := range o.Flags {
		if !flagName.MatchString(name) {
			return o, fmt.Errorf("options.flags: %q is not a flag name (lower-case letters, digits, '-' and '.', at most 63 characters)", name)
		}
		if f.Percent != nil && (*f.Percent < 0 || *f.Percent > 100) {
			return o, fmt.Errorf("options.flags.%s.percent: %d is not between 0 and 100", name, *f.Percent)
		}
	}
	return o, nil
}

// New implements plugin.Factory.
func (Factory) New(spec plugin.Spec, _ *slog.Logger) (plugin.Instance, error) {
	o, err := parseOptions(spec)
	if err != nil {
		return nil, err
	}
	return &Flags{opts: o, counts: &counts{n: map[string]int64{}}}, nil
}

// counts are the evaluation counts by flag name, shared by every configuration of one
// plugin. An unknown flag's evaluations count under "" so that clients asking for random
// names cannot grow the map.
type counts struct {
	mu sync.Mutex
	n  map[string]int64
}

func (c *counts) add(flag string) {
	c.mu.Lock()
	c.n[flag]++
	c.mu.Unlock()
}

func (c *counts) get(flag string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[flag]
}

// Flags is one configuration of a featureflags plugin. Its options never change; its
// counts are shared with the instances Reconfigure returns.
type Flags struct {
	opts   Options
	counts *counts
}

var (
	_ plugin.Reconfigurer = (*Flags)(nil)
	_ plugin.Stateful     = (*Flags)(nil)
)

// Reconfigure implements plugin.Reconfigurer: the new flags, the same counts. f is left as
// it is, so requests still running on it finish with the flags they started with.
func (f *Flags) Reconfigure(spec plugin.Spec) (plugin.Instance, error) {
	o, err := parseOptions(spec)
	if err != nil {
		return nil, err
	}
	return &Flags{opts: o, counts: f.counts}, nil
}

// Evaluation is evaluate's answer.
type Evaluation struct {
	Flag    string `json:"flag"`
	Enabled bool   `json:"enabled"`
	Reason  string `json:"reason"`
}

// FlagStatus is one flag of list's answer.
type FlagStatus struct {
	Enabled     bool  `json:"enabled"`
	Percent     int   `json:"percent"`
	Evaluations int64 `json:"evaluations"`
}

// List is list's answer.
type List struct {
	Flags   map[string]FlagStatus `json:"flags"`
	Default bool                  `json:"default"`
	// UnknownEvaluations counts evaluations of flags not in the options.
	UnknownEvaluations int64 `json:"unknownEvaluations"`
}

// Execute implements plugin.Instance.
func (f *Flags) Execute(_ context.Context, req plugin.Request) (plugin.Response, error) {
	var out any
	var err error
	switch req.Operation {
	case "evaluate":
		out, err = f.evaluateQuery(req.RawQuery)
	case "list":
		out, err = f.list(req.RawQuery)
	default:
		err = fmt.Errorf("%w: unknown operation %q", plugin.ErrInvalidRequest, req.Operation)
	}
	if err != nil {
		return plugin.Response{}, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return plugin.Response{}, err
	}
	return plugin.Response{Body: append(b, '\n')}, nil
}

// query parses a query string and refuses parameters other than allowed and repeated ones,
// naming the parameter.
func query(raw string, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %v", plugin.ErrInvalidRequest, err)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return nil, fmt.Errorf("%w: query parameter %q is not known (use %v)", plugin.ErrInvalidRequest, k, allowed)
		}
		if len(q[k]) > 1 {
			return nil, fmt.Errorf("%w: query parameter %q is given %d times, once at most", plugin.ErrInvalidRequest, k, len(q[k]))
		}
	}
	return q, nil
}

func (f *Flags) evaluateQuery(raw string) (Evaluation, error) {
	q, err := query(raw, "flag", "user")
	if err != nil {
		return Evaluation{}, err
	}
	name := q.Get("flag")
	switch {
	case name == "":
		return Evaluation{}, fmt.Errorf("%w: query parameter \"flag\" is required", plugin.ErrInvalidRequest)
	case !flagName.MatchString(name):
		return Evaluation{}, fmt.Errorf("%w: query parameter \"flag\": %q is not a flag name (lower-case letters, digits, '-' and '.', at most 63 characters)", plugin.ErrInvalidRequest, name)
	}
	return f.Evaluate(name, q.Get("user"))
}

// Evaluate evaluates flag for user and counts the evaluation. A flag rolled out to some
// users (percent 1 to 99) needs a user; without one the request is refused (and not
// counted).
func (f *Flags) Evaluate(flag, user string) (Evaluation, error) {
	fl, ok := f.opts.Flags[flag]
	if !ok {
		f.counts.add("")
		return Evaluation{Flag: flag, Enabled: f.opts.Default, Reason: ReasonUnknownFlag}, nil
	}
	percent := percentOf(fl)
	ev := Evaluation{Flag: flag}
	switch {
	case !fl.Enabled:
		ev.Reason = ReasonDisabled
	case percent == 100:
		ev.Enabled, ev.Reason = true, ReasonEnabled
	case percent == 0:
		ev.Reason = ReasonOutRollout
	case user == "":
		return Evaluation{}, fmt.Errorf("%w: query parameter \"user\" is required: flag %q is on for %d%% of users", plugin.ErrInvalidRequest, flag, percent)
	case Bucket(flag, user) < percent:
		ev.Enabled, ev.Reason = true, ReasonInRollout
	default:
		ev.Reason = ReasonOutRollout
	}
	f.counts.add(flag)
	return ev, nil
}

func percentOf(fl Flag) int {
	if fl.Percent == nil {
		return 100
	}
	return *fl.Percent
}

// Bucket places a user in one of 100 buckets for a flag: a user is in a rollout of p percent
// when Bucket < p. It is FNV-1a of flag, a zero byte and user, so the same user stays in or
// out of a flag's rollout across hosts, restarts and versions, and raising p only adds users.
func Bucket(flag, user string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(flag))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(user))
	return int(h.Sum32() % 100)
}

func (f *Flags) list(raw string) (List, error) {
	if _, err := query(raw); err != nil {
		return List{}, err
	}
	l := List{Flags: make(map[string]FlagStatus, len(f.opts.Flags)), Default: f.opts.Default, UnknownEvaluations: f.counts.get("")}
	for name, fl := range f.opts.Flags {
		l.Flags[name] = FlagStatus{Enabled: fl.Enabled, Percent: percentOf(fl), Evaluations: f.counts.get(name)}
	}
	return l, nil
}

// state is what Snapshot saves: the counts by flag name, "" for unknown flags.
type state struct {
	Evaluations map[string]int64 `json:"evaluations"`
}

// Snapshot implements plugin.Stateful. It keeps the counts of flags no longer configured
// too: a flag removed and added back keeps counting where it stopped.
func (f *Flags) Snapshot() (json.RawMessage, error) {
	f.counts.mu.Lock()
	defer f.counts.mu.Unlock()
	return json.Marshal(state{Evaluations: f.counts.n})
}

// Restore implements plugin.Stateful.
func (f *Flags) Restore(b json.RawMessage) error {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("featureflags state: %w", err)
	}
	f.counts.mu.Lock()
	defer f.counts.mu.Unlock()
	f.counts.n = make(map[string]int64, len(s.Evaluations))
	for k, v := range s.Evaluations {
		f.counts.n[k] = v
	}
	return nil
}
