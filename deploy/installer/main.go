// Command egress-router-installer is the node installer: it writes the cluster admin's
// node policy (from its ConfigMap) beside the node's CNI configuration, copies the
// egress-router CNI plugin from its image into the node's CNI bin directory, then keeps
// the node policy following the ConfigMap until the pod is stopped. It runs as a
// DaemonSet from a scratch image, so it needs no shell.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/egress-router/egress-router/internal/install"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/nodepolicy"
	"github.com/egress-router/egress-router/internal/version"
)

// defaultBinDir is where most runtimes look for CNI plugins; OpenShift's Multus uses
// /var/lib/cni/bin, set through -cni-bin-dir or CNI_BIN_DIR.
const defaultBinDir = "/opt/cni/bin"

// minPolicyPoll is the shortest -node-policy-poll: a zero or negative interval would
// panic the ticker, a tiny one re-read the file without pause.
const minPolicyPoll = 100 * time.Millisecond

func main() {
	source := flag.String("source", "/egress-router", "the plugin `binary` to install; it keeps its file name")
	binDir := flag.String("cni-bin-dir", envOr("CNI_BIN_DIR", defaultBinDir), "the node's CNI bin `directory` (environment CNI_BIN_DIR)")
	policy := &policyDelivery{}
	flag.StringVar(&policy.source, "node-policy", "/etc/egress-router/node-policy/"+nodepolicy.FileName,
		"the node policy `file` to deliver, the installer's ConfigMap mounted; none: the node's policy is removed")
	flag.StringVar(&policy.dir, "node-policy-dir", nodepolicy.Dir, "the node's `directory` "+nodepolicy.Dir+", where the policy is written")
	flag.DurationVar(&policy.every, "node-policy-poll", 10*time.Second, "how often the node policy file is read again")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if policy.every < minPolicyPoll {
		fmt.Fprintf(os.Stderr, "egress-router-installer: invalid value %q for flag -node-policy-poll: must be at least %v\n", policy.every, minPolicyPoll)
		os.Exit(2)
	}
	if *showVersion {
		fmt.Println("egress-router-installer", version.Version)
		return
	}
	log := logging.New(os.Stderr, slog.LevelInfo)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, *source, *binDir, policy); err != nil {
		log.Error("install failed", "error", err)
		os.Exit(1)
	}
}

// run delivers the node policy, installs source into binDir, then keeps the policy
// delivered until ctx ends. The policy goes first, so the plugin never runs on a node
// without the policy its admin gave. Staying up keeps the DaemonSet's pods Running, so
// a rollout of a new image re-runs the install on every node and "Ready" means
// "installed".
func run(ctx context.Context, log *slog.Logger, source, binDir string, policy *policyDelivery) error {
	policy.sync(log)
	dst := filepath.Join(binDir, filepath.Base(source))
	wrote, err := install.Binary(source, binDir, filepath.Base(source))
	if err != nil {
		return err
	}
	if wrote {
		log.Info("installed the plugin", "path", dst, "version", version.Version)
	} else {
		log.Info("the plugin is already installed", "path", dst, "version", version.Version)
	}
	policy.run(ctx, log)
	log.Info("stopping")
	return nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
