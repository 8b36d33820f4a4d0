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
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// revokeWhileFrozen applies revocations to a host that renders nothing new (its user
// ConfigMap is missing or invalid, its selector is invalid, its image is refused, or its
// types are not known yet): the host keeps its last rendered configuration, except the
// entries of Plugins whose credentials may no longer be used — the Plugin is gone, or its
// auth Secret is gone, has lost the consent label or lacks a key. Those entries leave
// <host>-config first, then their keys leave <host>-credentials, and the pods are nudged,
// as a render would. A frozen host is thus frozen for what its authors change, never for a
// Secret owner's withdrawal. The runtime keeps the credentials it last read when a file
// disappears, so dropping the keys alone would revoke nothing: the entry has to go.
func (r *PluginHostReconciler) revokeWhileFrozen(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: host.Namespace, Name: configMapName(host)}, cm); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(cm, host) {
		return nil
	}
	cfg, err := pluginconfig.Decode([]byte(cm.Data[ConfigFileName]))
	if err != nil {
		return nil //nolint:nilerr // not a configuration this manager rendered; the next render replaces it
	}
	var kept []pluginconfig.Plugin
	var revoked []string
	keep := map[string]bool{}
	for _, e := range cfg.Plugins {
		files := pluginCredentialFiles(e, r.Options.SecretsMountPath)
		if len(files) == 0 {
			kept = append(kept, e)
			continue
		}
		ok, err := r.consented(ctx, host.Namespace, e.Name)
		if err != nil {
			return err
		}
		if !ok {
			revoked = append(revoked, e.Name)
			continue
		}
		kept = append(kept, e)
		for _, f := range files {
			keep[f] = true
		}
	}
	if len(revoked) == 0 {
		return nil
	}

	secret := &corev1.Secret{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: host.Namespace, Name: credentialsName(host)}, secret); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("getting Secret %s: %w", credentialsName(host), err)
	}
	creds := map[string][]byte{}
	for k, v := range secret.Data {
		if keep[k] {
			creds[k] = v
		}
	}
	cfg.Plugins = kept
	if cfg.Plugins == nil {
		cfg.Plugins = []pluginconfig.Plugin{}
	}
	data, err := pluginconfig.Encode(cfg)
	if err != nil {
		return fmt.Errorf("encoding configuration: %w", err)
	}
	key, err := r.revKeys.get(ctx, r.Client, host)
	if err != nil {
		return err
	}
	// The entries first: a credentials file that disappears under an entry still in the
	// configuration is a refused reload, and the runtime keeps the old credentials.
	rev, err := r.applyConfigMap(ctx, rc, data)
	if err != nil {
		return err
	}
	if err := r.applier.apply(ctx, renderCredentials(host, withRevisionKey(creds, key))); err != nil {
		return err
	}
	rc.credentialsRevision = credentialsDigest(key, creds)
	if err := r.servedFrozen(ctx, rc, host.Status.ConfigRevision, data, revoked); err != nil {
		return err
	}
	if rev != host.Status.ConfigRevision {
		at := r.clock.renderedAt(client.ObjectKeyFromObject(host), rev, time.Now())
		host.Status.ConfigRevisionTime = &metav1.Time{Time: at}
	}
	host.Status.ConfigRevision = rev
	host.Status.PluginCount = int32(len(kept))
	ctrl.LoggerFrom(ctx).Info("Revoked the credentials of Plugins while the host renders nothing new",
		"plugins", revoked, "revision", short(rev))
	return nil
}

// consented reports whether the Plugin named name may still have its credentials mounted:
// it exists, and its auth Secret exists, carries the consent label and has the keys its
// auth method reads.
func (r *PluginHostReconciler) consented(ctx context.Context, namespace, name string) (bool, error) {
	p := &v1alpha1.Plugin{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("getting Plugin %s: %w", name, err)
	}
	secrets, err := r.readSecrets(ctx, namespace, []v1alpha1.Plugin{*p})
	if err != nil {
		return false, err
	}
	reason, _ := readCredentials(p, secrets, map[string][]byte{})
	return reason == "", nil
}

// pluginCredentialFiles returns the keys of <host>-credentials that config entry e reads:
// its *_file paths under secretsDir named <plugin>.<key> (credentialKey). Entries of the
// user's ConfigMap name no such file, and have none.
func pluginCredentialFiles(e pluginconfig.Plugin, secretsDir string) []string {
	var keys []string
	for _, f := range []string{e.Auth.APIKeyFile, e.Auth.TokenFile, e.Auth.UsernameFile, e.Auth.PasswordFile} {
		if f == "" || path.Dir(f) != path.Clean(secretsDir) {
			continue
		}
		if base := path.Base(f); strings.HasPrefix(base, e.Name+".") {
			keys = append(keys, base)
		}
	}
	return keys
}
