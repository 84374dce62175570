package deploy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/egress-router/egress-router/test/topology"
)

// requireSource asks the destination server, through the router at addr, which source
// it sees, and requires the reserved IP.
func requireSource(t *testing.T, tp *topology.Topology, network, addr string) {
	t.Helper()
	got, err := topology.AskSource(tp.Client, network, addr)
	if err != nil {
		t.Errorf("%s %s through the router: %v", network, addr, err)
		return
	}
	if want := topology.Reserved.Addr().String(); got != want {
		t.Errorf("%s %s through the router: the destination saw %s, want %s", network, addr, got, want)
	}
}

// viaHTTPProxy sends one request to the proxy from namespace n, requires the status,
// and returns what follows the response head (a body, or a tunnel's data) trimmed.
func viaHTTPProxy(t *testing.T, n ns.NetNS, proxy, request string, status int) string {
	t.Helper()
	resp, err := httpExchange(n, proxy, request)
	if err != nil {
		t.Fatalf("%q through %s: %v", request, proxy, err)
	}
	if resp.status != status {
		t.Errorf("%q through %s: status %d, want %d", request, proxy, resp.status, status)
	}
	return strings.TrimSpace(resp.rest)
}

type httpResult struct {
	status int
	rest   string
}

// httpExchange writes a raw request on a connection opened from namespace n and reads
// the response status and everything after the head until the peer closes. Raw,
// because an http.Client dials from goroutines outside the namespace.
func httpExchange(n ns.NetNS, addr, request string) (httpResult, error) {
	var conn net.Conn
	if err := n.Do(func(ns.NetNS) (err error) {
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	}); err != nil {
		return httpResult{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return httpResult{}, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return httpResult{}, fmt.Errorf("read response: %w", err)
	}
	var rest []byte
	if strings.HasPrefix(request, "CONNECT") && resp.StatusCode == http.StatusOK {
		rest, err = io.ReadAll(br) // the tunnel: bytes from the destination
	} else {
		rest, err = io.ReadAll(resp.Body)
	}
	return httpResult{resp.StatusCode, string(rest)}, err
}

// serveHTTPSource serves HTTP on port in namespace n, answering each request with the
// source address it came from.
func serveHTTPSource(t *testing.T, n ns.NetNS, port int) {
	t.Helper()
	ln := topology.Listen(t, n, "tcp", fmt.Sprintf(":%d", port))
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}
