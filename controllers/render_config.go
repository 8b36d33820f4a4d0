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
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// hostSelector returns the label selector of host's pluginSelector. A nil selector selects
// nothing; `{}` selects every Plugin.
func hostSelector(host *v1alpha1.PluginHost) (labels.Selector, error) {
	if host.Spec.PluginSelector == nil {
		return labels.Nothing(), nil
	}
	return selectors.get(host.Spec.PluginSelector)
}

// selectorCache holds parsed pluginSelectors by the address of their LabelSelector, with a
// copy to check that it still says the same. A render asks for the owner of each of its
// Plugins among every host of the namespace, and the Plugin reconciler for the hosts of its
// Plugin: parsing each selector each time made the work grow with Plugins × hosts per
// render. The cached objects' selectors keep their address for as long as the object does.
type selectorCache struct {
	mu sync.Mutex
	m  map[*metav1.LabelSelector]parsedSelector
}

type parsedSelector struct {
	spec metav1.LabelSelector
	sel  labels.Selector
	err  error
}

// maxCachedSelectors bounds selectorCache; beyond it, it starts again empty (each deep copy
// of a host brings a new address).
const maxCachedSelectors = 4096

var selectors = &selectorCache{m: map[*metav1.LabelSelector]parsedSelector{}}

func (c *selectorCache) get(ls *metav1.LabelSelector) (labels.Selector, error) {
	c.mu.Lock()
	p, ok := c.m[ls]
	c.mu.Unlock()
	if ok && sameSelector(&p.spec, ls) {
		return p.sel, p.err
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		err = fmt.Errorf("spec.pluginSelector: %w", err)
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedSelectors {
		clear(c.m)
	}
	c.m[ls] = parsedSelector{spec: *ls.DeepCopy(), sel: sel, err: err}
	c.mu.Unlock()
	return sel, err
}

func sameSelector(a, b *metav1.LabelSelector) bool {
	return maps.Equal(a.MatchLabels, b.MatchLabels) && slices.EqualFunc(a.MatchExpressions, b.MatchExpressions,
		func(x, y metav1.LabelSelectorRequirement) bool {
			return x.Key == y.Key && x.Operator == y.Operator && slices.Equal(x.Values, y.Values)
		})
}

// selects reports whether host selects a Plugin with these labels. An invalid selector
// selects nothing.
func selects(host *v1alpha1.PluginHost, pluginLabels map[string]string) bool {
	sel, err := hostSelector(host)
	return err == nil && sel.Matches(labels.Set(pluginLabels))
}

// olderHost orders PluginHosts for ownership: by creationTimestamp, then name.
func olderHost(a, b *v1alpha1.PluginHost) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.Name < b.Name
}

// selectingHosts returns the PluginHosts, not being deleted, that select a Plugin with these
// labels, oldest first: the first one runs the Plugin.
func selectingHosts(hosts []v1alpha1.PluginHost, pluginLabels map[string]string) []*v1alpha1.PluginHost {
	var out []*v1alpha1.PluginHost
	for i := range hosts {
		h := &hosts[i]
		if h.DeletionTimestamp.IsZero() && selects(h, pluginLabels) {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b *v1alpha1.PluginHost) int {
		switch {
		case olderHost(a, b):
			return -1
		case olderHost(b, a):
			return 1
		}
		return 0
	})
	return out
}

// ownerOf returns the name of the PluginHost that runs a Plugin with these labels (the
// oldest that selects it), or "", remembering it by label set in memo: the Plugins of one
// host mostly share their labels, so a render asks the hosts once per label set, not once
// per Plugin.
func ownerOf(memo map[string]string, hosts []v1alpha1.PluginHost, pluginLabels map[string]string) string {
	key := labels.Set(pluginLabels).String() // sorted, so one key per set
	if owner, ok := memo[key]; ok {
		return owner
	}
	owner := ""
	if owners := selectingHosts(hosts, pluginLabels); len(owners) > 0 {
		owner = owners[0].Name
	}
	memo[key] = owner
	return owner
}

// configInputs is everything a host's configuration depends on, read by the reconciler.
type configInputs struct {
	// Host is the PluginHost being rendered.
	Host *v1alpha1.PluginHost
	// Hosts are the PluginHosts of the namespace, Host included; they decide which host runs
	// a Plugin that several select.
	Hosts []v1alpha1.PluginHost
	// Plugins are the Plugins that Host's pluginSelector selects.
	Plugins []v1alpha1.Plugin
	// Secrets are the Secrets named by the Plugins' auth, by name; a name that is absent was
	// not found.
	Secrets map[string]*corev1.Secret
	// User is the validated config.json of spec.configMapRef, nil without one.
	User *pluginconfig.Config
	// SecretsDir is where the host pod mounts <host>-credentials.
	SecretsDir string
	// Types are the plugin types the Plugins are checked against: those Host's image
	// advertised, or anyTypes while HostTypes.Reason says why they are not known.
	Types pluginconfig.Types
	// HostTypes says, with a Reason, why the host's types are not known: every Plugin that
	// passes the other checks then waits with that reason.
	HostTypes hostTypes
	// LastGood returns a Plugin's entry in the configuration the host was last given, when
	// that entry is this Plugin's (nil: none). A Plugin whose new generation has an unknown
	// type or invalid options keeps it: one bad edit stops nothing that serves.
	LastGood func(p *v1alpha1.Plugin) (pluginconfig.Plugin, bool)
}

// evaluation is the verdict on each selected Plugin.
type evaluation struct {
	// Accepted are the config.json entries of the accepted Plugins, sorted by name.
	Accepted []pluginconfig.Plugin
	// Credentials is the content of <host>-credentials: credentialKey(<plugin>, <key>) for
	// every Secret key an accepted Plugin's auth reads.
	Credentials map[string][]byte
	// Plugins are the status.plugins entries, sorted by name, without Revision and
	// AppliedGeneration: at most MaxListedPlugins.
	Plugins []v1alpha1.SelectedPluginStatus
	// Unlisted counts the selected Plugins beyond MaxListedPlugins: not listed, not run.
	Unlisted int
}

// MaxListedPlugins bounds status.plugins of a PluginHost, and so the Plugins it runs: the
// oldest selected Plugins (creationTimestamp, then name) are listed, the others only counted
// (status.unlistedPlugins) and refused (HostFull; a Plugin's status is computed from its
// entry, so an unlisted Plugin cannot run). With each entry at most a 253-character name,
// a UID, a reason, a revision and a 1 KiB message (MaxStatusMessageBytes), status.plugins
// stays under 800 KiB whatever selects the host.
const MaxListedPlugins = 500

// evaluatePlugins decides which selected Plugins the host runs. A Plugin is left out when an
// older PluginHost also selects it, when the user ConfigMap defines its name, when its entry
// is over MaxPluginEntryBytes (PluginTooLarge), when the runtime's validation refuses it,
// when its auth Secret or a key of it is missing or the Secret is not marked for plugin
// auth, or when the host has no room left for it (HostFull: admit, MaxListedPlugins). Each
// refusal concerns that Plugin alone: the others are rendered.
func evaluatePlugins(in configInputs) evaluation {
	plugins := slices.Clone(in.Plugins)
	// The oldest MaxListedPlugins are listed and judged; the others are only counted.
	slices.SortFunc(plugins, func(a, b v1alpha1.Plugin) int { return olderPlugin(&a, &b) })
	unlisted := 0
	if len(plugins) > MaxListedPlugins {
		unlisted = len(plugins) - MaxListedPlugins
		plugins = plugins[:MaxListedPlugins]
	}
	slices.SortFunc(plugins, func(a, b v1alpha1.Plugin) int { return strings.Compare(a.Name, b.Name) })
	userNames := map[string]bool{}
	if in.User != nil {
		for _, p := range in.User.Plugins {
			userNames[p.Name] = true
		}
	}
	ev := evaluation{Credentials: map[string][]byte{}, Plugins: make([]v1alpha1.SelectedPluginStatus, 0, len(plugins)), Unlisted: unlisted}
	// The Plugins the host would run, admitted by admit once all are judged.
	var candidates []candidate
	owners := map[string]string{}
	for i := range plugins {
		p := &plugins[i]
		entry := v1alpha1.SelectedPluginStatus{Name: p.Name, UID: p.UID, Generation: p.Generation}
		reject := func(reason, format string, args ...any) {
			entry.Reason, entry.Message = reason, statusMessage(fmt.Sprintf(format, args...))
		}
		converted, errs := convertPlugin(p, in.SecretsDir)
		size := entrySize(converted)
		tooLarge := len(errs) == 0 && size > MaxPluginEntryBytes
		if tooLarge {
			// Before the schema: checking megabytes of options against it is wasted work, and
			// their errors would only be cut.
			errs = field.ErrorList{field.TooLong(field.NewPath("spec", "options"), "", MaxPluginEntryBytes)}
		} else if len(errs) == 0 {
			errs = validatePlugin(&converted, in.Types)
		}
		creds := map[string][]byte{}
		switch owner := ownerOf(owners, in.Hosts, p.Labels); {
		case owner != "" && owner != in.Host.Name:
			reject(v1alpha1.ReasonNameConflict,
				"PluginHost %q also selects this Plugin and runs it, being older: a Plugin runs on one PluginHost only", owner)
		case userNames[p.Name]:
			ref := in.Host.Spec.ConfigMapRef
			reject(v1alpha1.ReasonNameConflict,
				"ConfigMap %q (key %q) of PluginHost %q already defines a plugin named %q; the ConfigMap's definition is used",
				ref.Name, configMapKey(ref), in.Host.Name, p.Name)
		case len(errs) > 0:
			reason, msg := specRefusal(p, errs, in)
			if tooLarge {
				reason, msg = v1alpha1.ReasonPluginTooLarge, fmt.Sprintf(
					"The Plugin's entry of the configuration of PluginHost %s would be %d bytes of JSON, over the %d-byte limit of one Plugin: make spec.options smaller",
					in.Host.Name, size, MaxPluginEntryBytes)
			}
			reject(reason, "%s", msg)
			if kept, ok := keepLastGood(p, reason, converted, in); ok {
				if r, _ := readCredentials(p, in.Secrets, creds); r != "" {
					break // without its credentials the last entry cannot serve either
				}
				entry.Message = statusMessage(msg + "; the last accepted configuration of this Plugin keeps serving")
				candidates = append(candidates, newCandidate(p, len(ev.Plugins), kept, creds, msg))
			}
		case in.HostTypes.Reason != "":
			reject(in.HostTypes.Reason, "%s", in.HostTypes.Message)
		default:
			if reason, msg := readCredentials(p, in.Secrets, creds); reason != "" {
				reject(reason, "%s", msg)
				break
			}
			entry.Reason = v1alpha1.ReasonAccepted
			candidates = append(candidates, newCandidate(p, len(ev.Plugins), converted, creds, ""))
		}
		ev.Plugins = append(ev.Plugins, entry)
	}
	admit(in, &ev, candidates)
	return ev
}

// MaxPluginEntryBytes is the largest entry one Plugin may have in its host's config.json,
// as compact JSON (its spec.options above all). A larger Plugin is refused alone
// (PluginTooLarge): one Plugin cannot take a host's whole configuration.
const MaxPluginEntryBytes = 64 << 10

// MaxCredentialsBytes is how much of <host>-credentials the Plugins' copied credentials may
// fill, keys and values: the API server refuses a Secret whose data is over 1 MiB.
const MaxCredentialsBytes = 1<<20 - 4<<10

// entrySize is the size of a Plugin's entry of config.json, as compact JSON.
func entrySize(e pluginconfig.Plugin) int {
	b, err := json.Marshal(e)
	if err != nil {
		return 0 // convertPlugin's entries always encode; renderConfig reports it otherwise
	}
	return len(b)
}

// candidate is a Plugin the host would run, with what it needs: its config.json entry (its
// current one, or its last accepted one when refusedMsg says why the current one is not)
// and its credentials.
type candidate struct {
	plugin     *v1alpha1.Plugin
	index      int // in evaluation.Plugins
	entry      pluginconfig.Plugin
	creds      map[string][]byte
	refusedMsg string
}

func newCandidate(p *v1alpha1.Plugin, index int, e pluginconfig.Plugin, creds map[string][]byte, refusedMsg string) candidate {
	return candidate{plugin: p, index: index, entry: e, creds: creds, refusedMsg: refusedMsg}
}

// olderPlugin orders Plugins for a host's room: by creationTimestamp, then name.
func olderPlugin(a, b *v1alpha1.Plugin) int {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	switch {
	case ta.Before(&tb):
		return -1
	case tb.Before(&ta):
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// admit puts the candidates into the configuration, oldest first, as long as the
// rendered config.json stays within pluginconfig.MaxConfigBytes and the credentials within
// MaxCredentialsBytes; the others are refused with HostFull, alone: the host keeps rendering
// and rolling out what fits. The configuration's size is counted as renderConfig encodes
// it, each entry with its indentation and separator.
func admit(in configInputs, ev *evaluation, candidates []candidate) {
	slices.SortStableFunc(candidates, func(a, b candidate) int { return olderPlugin(a.plugin, b.plugin) })
	base := &pluginconfig.Config{Plugins: []pluginconfig.Plugin{}}
	if in.User != nil {
		base.Plugins = append(base.Plugins, in.User.Plugins...)
	}
	used, credsUsed := encodedSize(base), 0
	empty := encodedSize(&pluginconfig.Config{Plugins: []pluginconfig.Plugin{}})
	for _, c := range candidates {
		cost := encodedSize(&pluginconfig.Config{Plugins: []pluginconfig.Plugin{c.entry}}) - empty + len(",\n")
		credsCost := 0
		for k, v := range c.creds {
			credsCost += len(k) + len(v)
		}
		if used+cost <= pluginconfig.MaxConfigBytes && credsUsed+credsCost <= MaxCredentialsBytes {
			used += cost
			credsUsed += credsCost
			ev.Accepted = append(ev.Accepted, c.entry)
			maps.Copy(ev.Credentials, c.creds)
			continue
		}
		e := &ev.Plugins[c.index]
		room := fmt.Sprintf("PluginHost %s has no room for this Plugin: with its %d bytes of configuration and %d bytes of credentials, "+
			"the host's config.json would be over %d bytes (older Plugins and spec.configMapRef use %d) or its credentials over %d (older Plugins use %d). "+
			"A host admits its Plugins oldest first; delete or shrink Plugins of this host, or select this Plugin with another PluginHost",
			in.Host.Name, cost, credsCost, pluginconfig.MaxConfigBytes, used, MaxCredentialsBytes, credsUsed)
		if c.refusedMsg != "" {
			// Refused for its own spec, and its last entry does not fit either.
			e.Message = statusMessage(c.refusedMsg + "; its last accepted configuration is not kept either: " + room)
			continue
		}
		e.Reason, e.Message = v1alpha1.ReasonHostFull, statusMessage(room)
	}
	slices.SortStableFunc(ev.Accepted, func(a, b pluginconfig.Plugin) int { return strings.Compare(a.Name, b.Name) })
}

// encodedSize is the size of cfg as renderConfig encodes it (pluginconfig.Encode).
func encodedSize(cfg *pluginconfig.Config) int {
	data, err := pluginconfig.Encode(cfg)
	if err != nil {
		return 0
	}
	return len(data)
}

// keepLastGood returns the entry that keeps serving for a Plugin refused for reason: its
// entry in the last configuration, with the auth of the current spec (which passed its
// checks: credentials and their revocation follow the spec), when the refusal is the
// host's verdict on its type or options, or the size of its entry.
func keepLastGood(p *v1alpha1.Plugin, reason string, converted pluginconfig.Plugin, in configInputs) (pluginconfig.Plugin, bool) {
	if in.LastGood == nil || (reason != v1alpha1.ReasonInvalidOptions && reason != v1alpha1.ReasonUnknownPluginType &&
		reason != v1alpha1.ReasonPluginTooLarge) {
		return pluginconfig.Plugin{}, false
	}
	last, ok := in.LastGood(p)
	if !ok {
		return pluginconfig.Plugin{}, false
	}
	last.Auth = converted.Auth
	return last, true
}

// specRefusal is the reason and message of a Plugin that validation refuses: an unknown
// type (UnknownPluginType) or options that do not match the type's schema (InvalidOptions)
// when nothing else is wrong, InvalidSpec otherwise. The message is at most
// MaxReportedTextBytes: option errors quote the user's values.
func specRefusal(p *v1alpha1.Plugin, errs field.ErrorList, in configInputs) (reason, msg string) {
	var typeErrs, optionErrs, other field.ErrorList
	for _, e := range errs {
		switch {
		case e.Field == "spec.type":
			typeErrs = append(typeErrs, e)
		case e.Field == "spec.options" || strings.HasPrefix(e.Field, "spec.options."):
			optionErrs = append(optionErrs, e)
		default:
			other = append(other, e)
		}
	}
	image := ""
	if in.HostTypes.Image != "" {
		image = " (image " + in.HostTypes.Image + ")"
	}
	switch {
	case len(other) == 0 && len(typeErrs) > 0:
		carried := strings.Join(in.Types.TypeNames(), ", ")
		if carried == "" {
			carried = "none"
		}
		return v1alpha1.ReasonUnknownPluginType, truncateText(fmt.Sprintf("spec.type: PluginHost %s%s does not carry plugin type %q; the types it carries: %s",
			in.Host.Name, image, p.Spec.Type, carried), MaxReportedTextBytes)
	case len(other) == 0 && len(optionErrs) > 0:
		return v1alpha1.ReasonInvalidOptions, truncateText(fmt.Sprintf("The options do not match the schema of plugin type %q that PluginHost %s%s advertises: %s",
			p.Spec.Type, in.Host.Name, image, optionErrs.ToAggregate().Error()), MaxReportedTextBytes)
	default:
		return v1alpha1.ReasonInvalidSpec, truncateText("The plugin runtime refuses this spec: "+errs.ToAggregate().Error(), MaxReportedTextBytes)
	}
}

// readCredentials copies the Secret keys p's auth reads into creds under credentialKey, or
// returns the reason and message of why it may not: the Secret or a key is missing, or the
// Secret is not marked for plugin auth.
func readCredentials(p *v1alpha1.Plugin, secrets map[string]*corev1.Secret, creds map[string][]byte) (reason, msg string) {
	keys := secretKeys(authMethod(p))
	if len(keys) == 0 {
		return "", ""
	}
	name := authSecretName(p)
	s, ok := secrets[name]
	if !ok || s == nil {
		return v1alpha1.ReasonSecretNotFound, fmt.Sprintf("Secret %q (spec.auth.secretRef) not found in namespace %q", name, p.Namespace)
	}
	// Before the keys: an unmarked Secret's content is none of the Plugin's business.
	if msg := secretRefusal(s); msg != "" {
		return v1alpha1.ReasonSecretNotMarked, msg
	}
	for _, k := range keys {
		v, ok := s.Data[k]
		if !ok {
			return v1alpha1.ReasonSecretNotFound, fmt.Sprintf("Secret %q has no key %q, which auth method %q reads", name, k, authMethod(p))
		}
		if len(strings.TrimRight(string(v), "\r\n")) == 0 {
			return v1alpha1.ReasonSecretNotFound, fmt.Sprintf("Secret %q has an empty key %q, which auth method %q reads", name, k, authMethod(p))
		}
		creds[credentialKey(p.Name, k)] = v
	}
	return "", ""
}

// configMapKey is the key of ref, with its default.
func configMapKey(ref *v1alpha1.ConfigMapKeyReference) string {
	if ref == nil || ref.Key == "" {
		return v1alpha1.DefaultConfigMapKey
	}
	return ref.Key
}

// renderConfig merges the user's configuration with the accepted Plugins into canonical
// config.json bytes: every default explicit, plugins sorted by name. The same inputs always
// give the same bytes. The result is validated as the runtime will validate it.
func renderConfig(user *pluginconfig.Config, accepted []pluginconfig.Plugin, types pluginconfig.Types) ([]byte, error) {
	cfg := &pluginconfig.Config{Plugins: []pluginconfig.Plugin{}}
	if user != nil {
		cfg.Plugins = append(cfg.Plugins, user.Plugins...)
	}
	cfg.Plugins = append(cfg.Plugins, accepted...)
	// No pluginconfig.SetDefaults here: both sources are already defaulted (Parse and
	// convertPlugin), and defaulting again would turn an explicit max_idle_connections: 0
	// into 5.
	slices.SortStableFunc(cfg.Plugins, func(a, b pluginconfig.Plugin) int { return strings.Compare(a.Name, b.Name) })
	if errs := pluginconfig.Validate(cfg, types); len(errs) > 0 {
		return nil, fmt.Errorf("merged configuration is invalid: %w", errs.ToAggregate())
	}
	data, err := pluginconfig.Encode(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding configuration: %w", err)
	}
	if len(data) > pluginconfig.MaxConfigBytes {
		return nil, fmt.Errorf("rendered config.json is %d bytes, over the %d-byte limit of a ConfigMap", len(data), pluginconfig.MaxConfigBytes)
	}
	return data, nil
}

// parseUserConfig parses the user's config.json with the runtime's parser.
func parseUserConfig(data []byte, types pluginconfig.Types) (*pluginconfig.Config, error) {
	return pluginconfig.Parse(data, types)
}
