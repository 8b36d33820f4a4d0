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
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// RevisionKeyField is the key of <host>-credentials that holds the host's credentials
// revision key: 32 random bytes, created once, kept by every later apply. It is no
// credential: no plugin's config refers to it (credential keys are "<plugin>.<key>", and a
// Plugin's name cannot start with "_"). It is projected into the host's pods with the rest of
// the Secret, next to the credentials it protects.
const RevisionKeyField = "_revision-key"

// CredentialsRevisionPrefix starts the credentials-revision annotation.
const CredentialsRevisionPrefix = "hmac-sha256:"

const revisionKeyBytes = 32

// revisionKeys remembers each host's credentials revision key, read back from (or first
// written to) <host>-credentials, by host, so that a reconcile does not read the Secret again.
type revisionKeys struct {
	mu   sync.Mutex
	keys map[types.NamespacedName]revisionKey
}

type revisionKey struct {
	uid types.UID
	key []byte
}

// get returns host's revision key: the one remembered for this incarnation of the host, or
// the one <host>-credentials holds, or a new random one (which the caller applies in the
// Secret). A restarted manager thus reads the key back and computes the same revisions, and
// re-annotates no pod.
func (k *revisionKeys) get(ctx context.Context, c client.Reader, host *v1alpha1.PluginHost) ([]byte, error) {
	hostKey := types.NamespacedName{Namespace: host.Namespace, Name: host.Name}
	name := types.NamespacedName{Namespace: host.Namespace, Name: credentialsName(host)}
	k.mu.Lock()
	e, ok := k.keys[hostKey]
	k.mu.Unlock()
	if ok && e.uid == host.UID {
		return e.key, nil
	}
	s := &corev1.Secret{}
	var key []byte
	switch err := c.Get(ctx, name, s); {
	case err == nil && len(s.Data[RevisionKeyField]) == revisionKeyBytes:
		key = s.Data[RevisionKeyField]
	case err == nil || apierrors.IsNotFound(err):
		key = make([]byte, revisionKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("making the credentials revision key: %w", err)
		}
	default:
		return nil, fmt.Errorf("getting Secret %s: %w", name.Name, err)
	}
	k.mu.Lock()
	if k.keys == nil {
		k.keys = map[types.NamespacedName]revisionKey{}
	}
	k.keys[hostKey] = revisionKey{uid: host.UID, key: key}
	k.mu.Unlock()
	return key, nil
}

// forget drops the key of a deleted host.
func (k *revisionKeys) forget(host types.NamespacedName) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, host)
}

// credentialsDigest identifies the content of the credentials Secret without revealing it:
// an HMAC-SHA256 keyed by the host's revision key, so that whoever may read pods (and their
// annotations) cannot test guesses of a credential offline.
func credentialsDigest(key []byte, creds map[string][]byte) string {
	h := hmac.New(sha256.New, key)
	for _, k := range slices.Sorted(maps.Keys(creds)) {
		if k == RevisionKeyField || k == PushTokenField {
			continue
		}
		fmt.Fprintf(h, "%d:%s=%d:", len(k), k, len(creds[k]))
		h.Write(creds[k])
	}
	return CredentialsRevisionPrefix + hex.EncodeToString(h.Sum(nil))
}

// withRevisionKey returns the data of <host>-credentials: the credentials, the key and the
// config push token derived from it.
func withRevisionKey(creds map[string][]byte, key []byte) map[string][]byte {
	data := make(map[string][]byte, len(creds)+2)
	maps.Copy(data, creds)
	data[RevisionKeyField] = key
	data[PushTokenField] = pushToken(key)
	return data
}
