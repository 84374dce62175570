// Command egress-dns-proxy is the TCP forwarder of dns-proxy mode: each line's local
// port is relayed to a host name re-resolved at run time, from the reserved source
// address. See the README's "DNS proxy" section for the flags.
package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/proxyflags"
	"github.com/egress-router/egress-router/internal/resolver"
	"github.com/egress-router/egress-router/internal/version"
)

// debugEnv is the legacy image's switch for debug logs on stdout.
const debugEnv = "EGRESS_DNS_PROXY_DEBUG"

func main() {
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		os.Exit(proxyflags.ExitCode(err))
	}
	os.Exit(run(o))
}

func run(o options) int {
	if o.Version {
		fmt.Println("egress-dns-proxy", version.Version)
		return 0
	}
	cfg, data, err := config.ForProxy(config.DNSProxy, o.ConfigFile, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	res := &resolver.Resolver{Servers: o.DNSServers, Timeout: o.DNSTimeout}
	if o.check {
		printTable(os.Stdout, cfg, res)
		return 0
	}
	log, closeLog, err := openLog(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer closeLog.Close()
	if err := serve(o, cfg, data, res, log); err != nil {
		log.Error("egress-dns-proxy stopped", "error", err)
		return 1
	}
	return 0
}

// openLog writes to log_file, or stderr; the legacy debug variable sends debug logs to
// stdout, where the old image wrote them.
func openLog(cfg *config.Config) (*slog.Logger, io.Closer, error) {
	if os.Getenv(debugEnv) != "" {
		return logging.New(os.Stdout, slog.LevelDebug), io.NopCloser(nil), nil
	}
	return logging.Open(cfg.LogFile, cfg.LogLevel, os.Stderr)
}
