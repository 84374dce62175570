// Command egress-router-installer is the node installer: it copies the egress-router
// CNI plugin from its image into the node's CNI bin directory, then idles until the
// pod is stopped. It runs as a DaemonSet from a scratch image, so it needs no shell.
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

	"github.com/egress-router/egress-router/pkg/install"
	"github.com/egress-router/egress-router/pkg/logging"
	"github.com/egress-router/egress-router/pkg/version"
)

// defaultBinDir is where most runtimes look for CNI plugins; OpenShift's Multus uses
// /var/lib/cni/bin, set through -cni-bin-dir or CNI_BIN_DIR.
const defaultBinDir = "/opt/cni/bin"

func main() {
	source := flag.String("source", "/egress-router", "the plugin `binary` to install; it keeps its file name")
	binDir := flag.String("cni-bin-dir", envOr("CNI_BIN_DIR", defaultBinDir), "the node's CNI bin `directory` (environment CNI_BIN_DIR)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("egress-router-installer", version.Version)
		return
	}
	log := logging.New(os.Stderr, slog.LevelInfo)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, *source, *binDir); err != nil {
		log.Error("install failed", "error", err)
		os.Exit(1)
	}
}

// run installs source into binDir, then waits for ctx to end. Staying up keeps the
// DaemonSet's pods Running, so a rollout of a new image re-runs the install on every
// node and "Ready" means "installed".
func run(ctx context.Context, log *slog.Logger, source, binDir string) error {
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
	<-ctx.Done()
	log.Info("stopping")
	return nil
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}
