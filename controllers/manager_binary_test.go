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

package controllers_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

// clusterManager is the real manager binary (managerBin, built once by TestMain), started
// by startManagerBinary.
type clusterManager struct {
	cmd *exec.Cmd
	// metricsAddr is where it serves /metrics over HTTP (metricsFlags), or "".
	metricsAddr string
	stop        func()
}

// startManagerBinary starts the manager binary with the test's defaults (those of
// testOptions, as flags) and these extra flags (a later flag overrides an earlier one), and
// waits until /readyz says its caches have synced. It stops the process (SIGINT, as kubelet
// stops it with SIGTERM) when the test ends or stop is called, and fails the test if it did
// not exit cleanly. Its log (errors only, or everything with $PLUGIN_OPERATOR_TEST_LOG) is
// shown when the test fails.
func startManagerBinary(t testing.TB, flags ...string) *clusterManager {
	t.Helper()
	probe := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	level := "error"
	if os.Getenv(logEnv) != "" {
		level = "debug"
	}
	args := append([]string{"--kubeconfig=" + env.Kubeconfig,
		"--metrics-bind-address=0", "--health-probe-bind-address=" + probe, "--zap-log-level=" + level,
		"--status-poll-interval=200ms", "--default-host-image=example.com/pluginhost:test"}, flags...)
	m := &clusterManager{cmd: exec.Command(managerBin, args...)}
	secure := true
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--metrics-bind-address="); ok {
			m.metricsAddr = v
		}
		if v, ok := strings.CutPrefix(a, "--metrics-secure="); ok {
			secure = v != "false"
		}
	}
	if m.metricsAddr == "0" || secure {
		m.metricsAddr = "" // off, or not readable without a token
	}
	logs := &testutil.SyncBuffer{}
	m.cmd.Stdout, m.cmd.Stderr = logs, logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	m.stop = func() {
		once.Do(func() {
			_ = m.cmd.Process.Signal(os.Interrupt)
			if err := m.cmd.Wait(); err != nil {
				t.Errorf("manager: %v", err)
			}
			if t.Failed() {
				t.Logf("manager (pid %d) output:\n%s", m.cmd.Process.Pid, logs)
			}
		})
	}
	t.Cleanup(m.stop)
	testutil.Eventually(t, wait, "the manager's /readyz", func() error {
		if m.cmd.ProcessState != nil {
			return fmt.Errorf("the manager exited: %s", m.cmd.ProcessState)
		}
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return m
}

// metricsFlags are the flags that make the manager serve its metrics over plain HTTP on a
// free local port, for clusterManager.metricSum.
func metricsFlags(t testing.TB) []string {
	t.Helper()
	return []string{fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", freePort(t)), "--metrics-secure=false"}
}

// metricSum scrapes the manager's /metrics and adds up the series of a metric that have
// these labels, as metricSum does for the test process's registry.
func (m *clusterManager) metricSum(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	if m.metricsAddr == "" {
		t.Fatal("the manager serves no metrics: start it with metricsFlags")
	}
	resp, err := http.Get("http://" + m.metricsAddr + "/metrics")
	if err != nil {
		t.Fatalf("scraping the manager's metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping the manager's metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the manager's metrics: %v", err)
	}
	var metrics []*dto.Metric
	if f := families[name]; f != nil {
		metrics = f.GetMetric()
	}
	return sumMetrics(metrics, labels)
}

// sumMetrics adds up the counters and gauges of metrics that have these labels.
func sumMetrics(metrics []*dto.Metric, labels map[string]string) float64 {
	sum := 0.0
	for _, m := range metrics {
		if !hasLabels(m, labels) {
			continue
		}
		switch {
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}
