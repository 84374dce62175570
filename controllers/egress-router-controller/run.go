package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	kubeconfig "sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	v1 "github.com/egress-router/egress-router/api/v1"
	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/controller"
	"github.com/egress-router/egress-router/internal/logging"
	"github.com/egress-router/egress-router/internal/version"
)

// leaderElectionID names the Lease the controller's replicas compete for.
const leaderElectionID = "egress-router-controller.egress-router.io"

// runCommand runs the controller until SIGTERM or SIGINT.
func runCommand(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("egress-router-controller", flag.ContinueOnError)
	// -kubeconfig, else $KUBECONFIG, the in-cluster account, ~/.kube/config; with no
	// client-side rate limit (the API server's priority and fairness applies).
	kubeconfig.RegisterFlags(fs)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "`address` of the Prometheus metrics (0 disables them)")
	healthAddr := fs.String("health-probe-bind-address", ":8081", "`address` of /healthz and /readyz (0 disables them)")
	leaderElect := fs.Bool("leader-elect", true, "run only while holding the controller's Lease, so replicas never reconcile at once")
	leaderNamespace := fs.String("leader-election-namespace", "", "`namespace` of the Lease; default: the controller's own (in a cluster)")
	logLevel := fs.String("log-level", "info", "`level` of the logs on stderr: debug, info, warning or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	images := imageFlags(fs)
	if code := parse(fs, args, stderr); code >= 0 {
		return code
	}
	if *showVersion {
		fmt.Println("egress-router-controller", version.Version)
		return 0
	}
	level, err := config.ParseLogLevel(*logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "-log-level:", err)
		return 2
	}
	log := logr.FromSlogHandler(logging.New(stderr, level).Handler())
	ctrl.SetLogger(log)
	fail := func(what string, err error) int {
		log.Error(err, what)
		return 1
	}

	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fail("no API server to talk to", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fail("scheme", err)
	}
	if err := v1.AddToScheme(scheme); err != nil {
		return fail("scheme", err)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Cache:                   cache.Options{ByObject: controller.CacheByObject()},
		Metrics:                 metricsserver.Options{BindAddress: *metricsAddr},
		HealthProbeBindAddress:  *healthAddr,
		LeaderElection:          *leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: *leaderNamespace,
		// Hand the Lease over at once on a clean stop (a rollout), rather than after
		// it expires.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptr(10 * time.Second),
	})
	if err != nil {
		return fail("start the manager", err)
	}
	r := &controller.Reconciler{Client: mgr.GetClient(), Images: *images}
	if err := r.SetupWithManager(mgr); err != nil {
		return fail("set up the controller", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fail("health check", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return fail("readiness check", err)
	}
	log.Info("egress-router-controller starting", "version", version.Version, "images", fmt.Sprintf("%+v", *images))
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fail("egress-router-controller stopped", err)
	}
	return 0
}

func ptr[T any](v T) *T { return &v }
