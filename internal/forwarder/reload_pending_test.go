package forwarder

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/egress-router/egress-router/internal/connlimit"
)

// A line removed while clients keep connecting to it: whatever its listeners had
// accepted or queued at that moment, every client is either relayed or closed, none
// is left hanging; the counts and the connection slots all come back, so as many
// clients as the cap allows reach the remaining line afterwards, and Shutdown finds
// nothing to cut.
func TestRemovedLineWithConnectionsArrivingLeavesNoneHangingAndNoSlotTaken(t *testing.T) {
	const clients, capacity = 200, 64
	echo := server(t, "a")
	f := &Forwarder{Limiter: &connlimit.Limiter{Max: capacity}}
	start(t, f, cfg(t, fmt.Sprintf("7301 127.0.0.1 %d", echo), fmt.Sprintf("7302 127.0.0.1 %d", echo)))
	addr := net.JoinHostPort(f.ListenAddr, "7301")

	var wg sync.WaitGroup
	var refused, relayed, cut atomic.Int32
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				refused.Add(1) // the line was gone
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(c, "client %d\n", i)
			c.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(c)
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				errs <- fmt.Errorf("client %d left hanging", i)
			case len(got) > 0:
				relayed.Add(1)
			default:
				cut.Add(1) // reset in the accept queue
			}
		}()
		if i == clients/2 {
			if err := f.SetRules(cfg(t, fmt.Sprintf("7302 127.0.0.1 %d", echo))); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d clients relayed, %d closed, %d refused", relayed.Load(), cut.Load(), refused.Load())
	for deadline := time.Now().Add(5 * time.Second); metric(t, f, "egress_dns_proxy_connections_active") != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("connections still counted active")
		}
	}
	var held []*client
	for range capacity {
		c := dial(t, f, 7302)
		if got := c.line(t); got != "a 127.0.0.1" {
			t.Fatalf("after the storm, a client within the cap got %q", got)
		}
		held = append(held, c)
	}
	for _, c := range held {
		c.Close()
	}
	noneCut(t, shutdown(f))
}
