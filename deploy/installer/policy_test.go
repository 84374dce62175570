package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/nodepolicy"
	"github.com/egress-router/egress-router/test/capture"
	"github.com/egress-router/egress-router/test/wait"
)

// noPolicy is a delivery whose ConfigMap is absent, into a directory of its own.
func noPolicy(t *testing.T) *policyDelivery {
	return &policyDelivery{source: filepath.Join(t.TempDir(), "absent"), dir: t.TempDir(), every: time.Hour}
}

// The node's file follows the ConfigMap through its life: created, updated, kept when
// the ConfigMap turns invalid (reported once), removed when it is gone.
func TestPolicyFollowsTheConfigMap(t *testing.T) {
	d := &policyDelivery{source: filepath.Join(t.TempDir(), nodepolicy.FileName), dir: t.TempDir()}
	node := filepath.Join(d.dir, nodepolicy.FileName)
	var logs bytes.Buffer
	log := logging.New(&logs, 0)
	for _, step := range []struct {
		name     string
		source   string // "" = no ConfigMap
		wantNode string // "" = no node file
		wantLog  string
	}{
		{"no ConfigMap, no file", "", "", ""},
		{"a ConfigMap is installed", `{"masters": ["ens4"]}`, `{"masters": ["ens4"]}`, "installed the node policy"},
		{"an unchanged ConfigMap writes nothing", `{"masters": ["ens4"]}`, `{"masters": ["ens4"]}`, ""},
		{"an update is installed", `{"masters": ["br-ex"]}`, `{"masters": ["br-ex"]}`, "installed the node policy"},
		{"an invalid ConfigMap leaves the file", `{"masters": ["br-ex"], "macvlanModes": []}`, `{"masters": ["br-ex"]}`, "not valid"},
		{"the same invalid ConfigMap is not reported again", `{"masters": ["br-ex"], "macvlanModes": []}`, `{"masters": ["br-ex"]}`, ""},
		{"a misspelt field leaves the file", `{"master": ["eth9"]}`, `{"masters": ["br-ex"]}`, `unknown field \"master\"`},
		{"a fixed ConfigMap is installed", `{"masters": ["eth9"]}`, `{"masters": ["eth9"]}`, "installed the node policy"},
		{"a ConfigMap gone removes the file", "", "", "removed the node's policy"},
	} {
		t.Run(step.name, func(t *testing.T) {
			os.Remove(d.source)
			if step.source != "" {
				if err := os.WriteFile(d.source, []byte(step.source), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			logs.Reset()
			d.sync(log)
			got, err := os.ReadFile(node)
			if step.wantNode == "" && err == nil {
				t.Errorf("the node still has %s:\n%s", node, got)
			}
			if step.wantNode != "" && string(got) != step.wantNode {
				t.Errorf("node file %q (%v), want %q", got, err, step.wantNode)
			}
			if step.wantLog == "" && logs.Len() != 0 || !strings.Contains(logs.String(), step.wantLog) {
				t.Errorf("log %q, want %q", logs.String(), step.wantLog)
			}
			if entries, _ := os.ReadDir(d.dir); len(entries) > 1 {
				t.Errorf("the node's directory holds %d entries: a temporary file was left", len(entries))
			}
		})
	}
}

// run delivers the policy before the plugin, and follows changes while it runs.
func TestRunDeliversThePolicyAndFollowsIt(t *testing.T) {
	src := filepath.Join(t.TempDir(), "egress-router")
	if err := os.WriteFile(src, []byte("plugin"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &policyDelivery{source: filepath.Join(t.TempDir(), nodepolicy.FileName), dir: t.TempDir(), every: 10 * time.Millisecond}
	if err := os.WriteFile(d.source, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(d.dir, nodepolicy.FileName)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	logs := &capture.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, logging.New(logs, 0), src, t.TempDir(), d) }()
	wait.For(t, 5*time.Second, "the first policy", func() bool { b, _ := os.ReadFile(node); return string(b) == `{}` })
	wait.For(t, 5*time.Second, "the plugin", func() bool { return strings.Contains(logs.String(), "installed the plugin") })
	if policy, plugin := strings.Index(logs.String(), "installed the node policy"), strings.Index(logs.String(), "installed the plugin"); policy < 0 || policy > plugin {
		t.Errorf("the policy was not delivered before the plugin:\n%s", logs.String())
	}
	if err := os.WriteFile(d.source, []byte(`{"logDir": "/var/log/er"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 5*time.Second, "the updated policy", func() bool { b, _ := os.ReadFile(node); return string(b) == `{"logDir": "/var/log/er"}` })
	os.Remove(d.source)
	wait.For(t, 5*time.Second, "the removal", func() bool { _, err := os.Stat(node); return os.IsNotExist(err) })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
