package ha_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/egress-router/egress-router/internal/config"
	"github.com/egress-router/egress-router/internal/link"
	"github.com/egress-router/egress-router/internal/nat"
	"github.com/egress-router/egress-router/internal/plan"
	"github.com/egress-router/egress-router/test/capture"
	"github.com/egress-router/egress-router/test/topology"
)

const agentPkg = "github.com/egress-router/egress-router/agents/egress-router-agent"

// conf is the router's configuration: redirect mode, IPv4 (the address a new leader
// probes for before taking it, see internal/agent), HA on.
var conf = fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "egress-ha", "type": "egress-router",
  "interfaceArgs": {"master": %q},
  "ip": {"addresses": [%q], "gateway": %q, "destinations": ["80 tcp 203.0.113.25"]},
  "ha": {"enabled": true}}`, topology.Master, topology.Reserved.String(), topology.Gateway.Addr().String())

// dualStackConf is conf with an IPv6 address too, and port 443 redirected to an IPv6
// destination.
var dualStackConf = fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "egress-ha", "type": "egress-router",
  "interfaceArgs": {"master": %q},
  "ip": {"addresses": [%q, %q], "gateways": [%q, %q], "destinations": ["80 tcp 203.0.113.25", "443 tcp 2001:db8:20::25"]},
  "ha": {"enabled": true}}`, topology.Master, topology.Reserved.String(), topology.Reserved6.String(),
	topology.Gateway.Addr().String(), topology.Gateway6.Addr().String())

// routerPod is one replica: a pod namespace whose net1 is on node's ext0, and its agent.
type routerPod struct {
	name  string
	pod   *topology.Pod
	node  ns.NetNS
	cni   *topology.CNI
	att   *topology.Attachment
	mac   string
	agent *agentProcess
	api   *apiForwarder
	gone  bool // its namespace was deleted (vanish)
}

// router is an HA router of two replicas on two nodes, with its Lease in a namespace
// of its own on the shared API server.
type router struct {
	t          testing.TB
	tp         *topology.Topology
	pods       [2]*routerPod
	res        link.Reservation
	namespace  string
	lease      string
	conf       string
	configPath string
	agentBin   string
	kubeconfig string
	client     kubernetes.Interface
	sampler    *holderSampler
	leases     *leaseWatch
	created    int // pods made so far, which names the next
	// mu guards the slots of pods against the sampler while vanish and replace change
	// them.
	mu sync.Mutex
}

func newRouter(t testing.TB) *router {
	t.Helper()
	return newRouterOf(t, conf)
}

// newRouterOf is newRouter with the configuration conf.
func newRouterOf(t testing.TB, conf string) *router {
	t.Helper()
	tp := topology.New(t)
	topology.ServeSource(t, tp.Dest, "tcp", 80)
	topology.ServeSource(t, tp.Dest, "tcp", 443)
	plugins := topology.Build(t, topology.RouterPlugin)
	r := &router{t: t, tp: tp, conf: conf, lease: "egress-ha", agentBin: filepath.Join(topology.Build(t, agentPkg), "egress-router-agent")}
	c, err := config.Load([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	r.res = plan.New(c, nat.Attachment{IfName: "net1"}, "", nil).Activation
	r.configPath = filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(r.configPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.client = kubernetes.NewForConfigOrDie(apiServer.Config)
	nsObj, err := r.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ha-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r.namespace = nsObj.Name
	r.kubeconfig = r.writeKubeconfig(r.agentAccount())
	cni := tp.CNI(t, plugins)
	nodes := [2]ns.NetNS{tp.Node, tp.AddNode(t)}
	r.pods[0] = r.newPod(tp.Pod, nodes[0], cni.On(nodes[0]))
	r.pods[1] = r.newPod(tp.AddPod(t), nodes[1], cni.On(nodes[1]))
	r.sampler = startSampler(t, r)
	r.leases = watchLease(t, r.client, r.namespace, r.lease)
	return r
}

// newPod makes a replica of pod, named router-0, router-1, … in order of creation, on
// node: its API relay, and the plugin's ADD.
func (r *router) newPod(pod *topology.Pod, node ns.NetNS, cni *topology.CNI) *routerPod {
	p := &routerPod{name: fmt.Sprintf("router-%d", r.created), pod: pod, node: node, cni: cni, api: forwardAPI(r.t, pod.NS)}
	r.created++
	r.attach(p)
	return p
}

// vanish takes pod i away as a failed node or a force-deleted pod does: its agent is
// killed (SIGKILL) and its network namespace deleted, which takes net1, the address
// on it and eth0 along. It returns once the kernel has destroyed the namespace (eth0's
// peer on the cluster bridge is gone).
func (r *router) vanish(i int) {
	t := r.t
	t.Helper()
	p := r.pods[i]
	p.agent.signal(t, syscall.SIGKILL)
	p.agent.waitExit(t, 5*time.Second)
	p.api.close() // its sockets, made in the namespace, would keep it alive
	r.mu.Lock()
	err := topology.DeleteNS(p.pod.NS)
	p.gone = true
	r.mu.Unlock()
	if err != nil {
		t.Fatalf("delete %s's namespace: %v", p.name, err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var err error
		if doErr := r.tp.Node.Do(func(ns.NetNS) error { _, err = netlink.LinkByName(p.pod.Bridge); return nil }); doErr != nil {
			t.Fatal(doErr)
		}
		if errors.As(err, new(netlink.LinkNotFoundError)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's namespace still exists 5s after its deletion (%s is on the node: %v)", p.name, p.pod.Bridge, err)
		}
	}
}

// replace puts a new pod in slot i on the same node, as the Deployment would after
// vanish: the runtime's DEL of the old attachment (its namespace is gone), a new pod
// namespace, the plugin's ADD there, and a new agent.
func (r *router) replace(i int) {
	old := r.pods[i]
	if err := old.cni.Del(old.att); err != nil {
		r.t.Fatalf("DEL of %s, whose namespace is gone: %v", old.name, err)
	}
	p := r.newPod(r.tp.AddPod(r.t), old.node, old.cni)
	r.mu.Lock()
	r.pods[i] = p
	r.mu.Unlock()
	r.start(i)
}

// attach runs the plugin's ADD for p (a DEL first, for a pod whose network was
// removed) and checks the standby state the plugin leaves.
func (r *router) attach(p *routerPod) {
	t := r.t
	t.Helper()
	p.att = p.cni.Attach(t, p.pod, []byte(r.conf), "net1")
	_ = p.cni.Del(p.att)
	res, err := p.cni.Add(p.att)
	if err != nil {
		t.Fatalf("ADD %s: %v", p.name, err)
	}
	out := fmt.Sprint(res)
	p.mac = ""
	err = p.pod.NS.Do(func(ns.NetNS) error {
		l, err := net.InterfaceByName("net1")
		if err == nil {
			p.mac = l.HardwareAddr.String()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.res.Addresses {
		if strings.Contains(out, a.Addr().String()) {
			t.Fatalf("HA ADD reported the reserved address %s: %s", a.Addr(), out)
		}
	}
}

// agentAccount is a user with only the RBAC the HA contract gives a router's agents:
// create Leases, get and update the router's; create and patch Events. It returns the
// user's kubeconfig.
func (r *router) agentAccount() []byte {
	ctx := context.Background()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "egress-ha-agent"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"create"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{r.lease}, Verbs: []string{"get", "update"}},
		{APIGroups: []string{"", "events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}}
	if _, err := r.client.RbacV1().Roles(r.namespace).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	user := "egress-ha-agent-" + r.namespace
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "egress-ha-agent"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}}}
	if _, err := r.client.RbacV1().RoleBindings(r.namespace).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		r.t.Fatal(err)
	}
	u, err := apiServer.AddUser(envtest.User{Name: user}, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	kubeconfig, err := u.KubeConfig()
	if err != nil {
		r.t.Fatal(err)
	}
	return kubeconfig
}

// writeKubeconfig writes kubeconfig pointed at the API server through each pod's
// forwarder (127.0.0.1:6443 inside the pod).
func (r *router) writeKubeconfig(kubeconfig []byte) string {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		r.t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://127.0.0.1:6443"
	}
	path := filepath.Join(r.t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// start runs pod i's agent.
func (r *router) start(i int) {
	p := r.pods[i]
	p.agent = startAgent(r.t, p.pod.NS, p.name, r.agentBin, "-config="+r.configPath, "-lease-name="+r.lease,
		"-lease-namespace="+r.namespace, "-identity="+p.name, "-kubeconfig="+r.kubeconfig, "-metrics-listen=127.0.0.1:9091")
}

// holds reports whether pod i's net1 holds a reserved address; a pod without net1, or
// without a namespace, holds nothing.
func (r *router) holds(i int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pods[i]
	if p.gone {
		return false
	}
	var held bool
	_ = p.pod.NS.Do(func(ns.NetNS) (err error) {
		held, err = link.Holds(r.res)
		return err
	})
	return held
}

// ready asks pod i's agent for /readyz.
func (r *router) ready(i int) bool {
	p := r.pods[i]
	if p.gone || p.agent == nil || p.agent.exitedOrStopped() {
		return false
	}
	code, _, err := r.get(i, "/readyz")
	return err == nil && code == http.StatusOK
}

// get fetches path from pod i's agent (-metrics-listen, inside the pod).
func (r *router) get(i int, path string) (int, string, error) {
	p := r.pods[i]
	c := http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
			err = p.pod.NS.Do(func(ns.NetNS) error {
				conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return conn, err
		}}}
	resp, err := c.Get("http://127.0.0.1:9091" + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitActive waits until exactly one pod, not excluded, is ready and holds the
// address, and returns it and when that was first seen.
func (r *router) waitActive(within time.Duration, exclude int) (int, time.Time) {
	r.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for i := range r.pods {
			if i != exclude && r.ready(i) && r.holds(i) {
				return i, time.Now()
			}
		}
	}
	r.t.Fatalf("no pod became active within %v (ready %v/%v, holds %v/%v)", within, r.ready(0), r.ready(1), r.holds(0), r.holds(1))
	return -1, time.Time{}
}

// connectThrough opens a connection through pod i to the destination and returns the
// source the destination saw.
func (r *router) connectThrough(i int) (string, error) {
	return topology.AskSource(r.tp.Client, "tcp", net.JoinHostPort(r.pods[i].pod.Addr.Addr().String(), "80"))
}

// connectThrough6 is connectThrough over IPv6 (dualStackConf: port 443 to
// 2001:db8:20::25).
func (r *router) connectThrough6(i int) (string, error) {
	return topology.AskSource(r.tp.Client, "tcp", net.JoinHostPort(r.pods[i].pod.Addr6.Addr().String(), "443"))
}

// The client of firstConnection: it tries every clientInterval, from the fault on, and
// gives a connection clientTimeout to be made and answered.
const (
	clientInterval = 20 * time.Millisecond
	clientTimeout  = 200 * time.Millisecond
)

// firstConnection is a client of the router's Service, whose endpoints follow
// readiness: at a fixed short interval it connects through each ready pod until the
// destination sees the reserved address, and returns through which pod and when. Each
// try is bounded (clientTimeout) so that a pod that is gone costs a try, not a dial
// timeout. If announced, before its first try through a pod it checks that the gateway
// already maps the reserved addresses to that pod's MAC: announced, not learnt from
// traffic.
func (r *router) firstConnection(within time.Duration, announced bool) (int, time.Time) {
	r.t.Helper()
	var lastErr error
	checked := map[*routerPod]bool{}
	tick := time.NewTicker(clientInterval)
	defer tick.Stop()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); <-tick.C {
		for i, p := range r.pods {
			if !r.ready(i) {
				continue
			}
			if announced && !checked[p] {
				checked[p] = true
				if err := r.gatewayKnows(i); err != nil {
					r.t.Error(err)
				}
			}
			src, err := topology.AskSourceWithin(r.tp.Client, "tcp", net.JoinHostPort(p.pod.Addr.Addr().String(), "80"), clientTimeout)
			if err == nil && src == topology.Reserved.Addr().String() {
				return i, time.Now()
			}
			lastErr = fmt.Errorf("through %s: source %q, %v", p.name, src, err)
		}
	}
	r.t.Fatalf("no connection through a ready pod within %v: %v", within, lastErr)
	return -1, time.Time{}
}

// gatewayKnows checks that the gateway's neighbour entry for each reserved address
// holds pod i's MAC.
func (r *router) gatewayKnows(i int) error {
	var neighs []netlink.Neigh
	err := r.tp.Gateway.Do(func(ns.NetNS) error {
		lan, err := netlink.LinkByName("lan")
		if err == nil {
			neighs, err = netlink.NeighList(lan.Attrs().Index, netlink.FAMILY_ALL)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("the gateway's neighbours: %w", err)
	}
	var errs []error
	for _, a := range r.res.Addresses {
		k := slices.IndexFunc(neighs, func(n netlink.Neigh) bool { ip, _ := netip.AddrFromSlice(n.IP); return ip.Unmap() == a.Addr() })
		switch {
		case k < 0:
			errs = append(errs, fmt.Errorf("the gateway has no neighbour entry for %s, want %s's MAC %s", a.Addr(), r.pods[i].name, r.pods[i].mac))
		case neighs[k].HardwareAddr.String() != r.pods[i].mac:
			errs = append(errs, fmt.Errorf("the gateway's entry for %s is %q (state %s), want %s's MAC %s", a.Addr(), neighs[k].HardwareAddr, neighState(neighs[k].State), r.pods[i].name, r.pods[i].mac))
		}
	}
	return errors.Join(errs...)
}

// neighState names a neighbour entry's state as ip neigh does.
func neighState(state int) string {
	for _, s := range []struct {
		bit  int
		name string
	}{{netlink.NUD_INCOMPLETE, "INCOMPLETE"}, {netlink.NUD_REACHABLE, "REACHABLE"}, {netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"},
		{netlink.NUD_PROBE, "PROBE"}, {netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_PERMANENT, "PERMANENT"}} {
		if state&s.bit != 0 {
			return s.name
		}
	}
	return strconv.Itoa(state)
}

// assertStandby checks that pod i holds nothing of the activation.
func (r *router) assertStandby(i int) {
	r.t.Helper()
	err := r.pods[i].pod.NS.Do(func(ns.NetNS) error { return link.CheckReleased(r.res) })
	if err != nil {
		r.t.Errorf("%s is not a clean standby: %v", r.pods[i].name, err)
	}
}

// holderSampler looks at both pods every 20 ms and remembers every sample in which
// both held the address.
type holderSampler struct {
	mu    sync.Mutex
	both  []time.Time
	count int
	stop  chan struct{}
	done  chan struct{}
}

func startSampler(t testing.TB, r *router) *holderSampler {
	s := &holderSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			both := r.holds(0) && r.holds(1)
			s.mu.Lock()
			s.count++
			if both {
				s.both = append(s.both, time.Now())
			}
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(s.stop)
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.both) > 0 {
			t.Errorf("both pods held %s in %d of %d samples (first at %s)", topology.Reserved.Addr(), len(s.both), s.count, s.both[0].Format(time.StampMilli))
		}
	})
	return s
}

// agentProcess is an agent the test runs in a pod namespace; it is killed (by PID)
// when the test ends and its output logged if the test failed.
type agentProcess struct {
	name    string
	cmd     *exec.Cmd
	logs    *capture.Buffer
	exited  chan struct{}
	stopped bool // SIGSTOPped
}

func startAgent(t testing.TB, netns ns.NetNS, name, bin string, args ...string) *agentProcess {
	t.Helper()
	a := &agentProcess{name: name, logs: &capture.Buffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command("nsenter", append([]string{"--net=" + netns.Path(), "--", bin}, args...)...)
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		a.cmd.Process.Signal(syscall.SIGCONT)
		a.cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("%s agent output:\n%s", name, a.logs.String())
		}
	})
	return a
}

func (a *agentProcess) signal(t testing.TB, s syscall.Signal) {
	t.Helper()
	if err := a.cmd.Process.Signal(s); err != nil {
		t.Fatalf("signal %s to %s: %v", s, a.name, err)
	}
	a.stopped = s == syscall.SIGSTOP
}

func (a *agentProcess) exitedOrStopped() bool {
	select {
	case <-a.exited:
		return true
	default:
		return a.stopped
	}
}

// waitExit fails the test unless the agent exits within d.
func (a *agentProcess) waitExit(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-a.exited:
	case <-time.After(d):
		t.Fatalf("%s still running %v after the signal", a.name, d)
	}
}

// apiForwarder is the API server as an agent in one pod sees it: 127.0.0.1:6443 in
// the pod namespace, relayed to the API server. Cut makes it unreachable (every
// connection reset, new ones refused), like an API server stopped or a partition
// between the pod and it; Restore brings it back.
type apiForwarder struct {
	ln    net.Listener
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func forwardAPI(t testing.TB, podNS ns.NetNS) *apiForwarder {
	t.Helper()
	target, err := url.Parse(apiServer.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	ln := topology.Listen(t, podNS, "tcp", "127.0.0.1:6443")
	f := &apiForwarder{ln: ln, conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.relay(c, target.Host)
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *apiForwarder) relay(c net.Conn, target string) {
	up, err := net.Dial("tcp", target)
	f.mu.Lock()
	if err != nil || f.cut {
		f.mu.Unlock()
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	f.conns[c], f.conns[up] = true, true
	f.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	f.mu.Lock()
	delete(f.conns, c)
	delete(f.conns, up)
	f.mu.Unlock()
}

func (f *apiForwarder) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cut = true
	for c := range f.conns {
		c.Close()
	}
}

// close cuts f for good: its listener goes too.
func (f *apiForwarder) close() {
	f.Cut()
	f.ln.Close()
}

func (f *apiForwarder) Restore() {
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
}

// leaseHolder is the router's Lease's holder, as the API server has it.
func (r *router) leaseHolder() string {
	l, err := r.client.CoordinationV1().Leases(r.namespace).Get(context.Background(), r.lease, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

var errNoEvent = errors.New("no event")

// eventFor finds an event with reason about the pod named pod.
func (r *router) eventFor(pod string, reason string) error {
	list, err := r.client.CoreV1().Events(r.namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.InvolvedObject.Name == pod && e.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("%w %s for %s among %d", errNoEvent, reason, pod, len(list.Items))
}
