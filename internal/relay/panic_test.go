package relay

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/serve"
)

// A panic in a caller's callback that the loop runs outside a relay (Start after a
// failed connect or a timeout, Connected, done) ends that session with the panic as
// its error, or is dropped if done itself panicked; the loops go on relaying.
// Unrecovered, it would end the process, and every connection with it.
func TestPanicInACallbackEndsOnlyItsSession(t *testing.T) {
	echo := echoServer(t)
	refused := closedAddr(t)
	silent := serve.Silent(t, "127.0.0.1")
	cases := []struct {
		name  string
		start func(failed error) (int, error)
		up    func(up *Upstream)
		done  bool // done panics
	}{
		{name: "Start after a refused connect", start: func(failed error) (int, error) {
			if failed != nil {
				panic("bug in Start")
			}
			return (&attempts{dsts: []netip.AddrPort{refused}}).start(nil)
		}},
		{name: "Start after a timeout", start: func(failed error) (int, error) {
			if failed != nil {
				panic("bug in Start")
			}
			return (&attempts{dsts: []netip.AddrPort{silent}}).start(nil)
		}, up: func(up *Upstream) { up.Timeout = 100 * time.Millisecond }},
		{name: "Start at first", start: func(error) (int, error) { panic("bug in Start") }},
		{name: "Connected", up: func(up *Upstream) { up.Connected = func() { panic("bug in Connected") } }},
		{name: "done", start: func(failed error) (int, error) {
			if failed != nil {
				return -1, errGaveUp
			}
			return (&attempts{dsts: []netip.AddrPort{refused}}).start(nil)
		}, done: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan outcome, 1)
			doneCalled := make(chan struct{}, 1)
			_, addr := listenLoops(t, Accept{Accepted: func(c *Accepted) {
				up := &Upstream{Start: tc.start, Timeout: time.Second}
				if up.Start == nil {
					up.Start = (&attempts{dsts: []netip.AddrPort{echo}}).start
				}
				if tc.up != nil {
					tc.up(up)
				}
				Relay{}.Connect(c, up, func(res Result, err error) {
					doneCalled <- struct{}{}
					if tc.done {
						panic("bug in done")
					}
					ended <- outcome{res, err}
				})
			}}, false)
			closedByProxy(t, dialClient(t, addr))
			select {
			case <-doneCalled:
			case <-time.After(10 * time.Second):
				t.Fatal("done was not called")
			}
			if !tc.done {
				if o := waitEnded(t, ended); o.err == nil || !strings.Contains(o.err.Error(), "panic") {
					t.Fatalf("done: %v, want the panic", o.err)
				}
			}
		})
	}
	// Every loop still relays after the panics above (the kernel spreads connections
	// over the loops' sockets).
	ended := make(chan outcome, 16)
	_, addr := listenLoops(t, Accept{Accepted: func(c *Accepted) {
		up := &Upstream{Start: (&attempts{dsts: []netip.AddrPort{echo}}).start, Timeout: time.Second}
		Relay{}.Connect(c, up, func(res Result, err error) { ended <- outcome{res, err} })
	}}, false)
	for range 16 {
		c := dialClient(t, addr)
		io.WriteString(c, "hello")
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != "hello" {
			t.Fatalf("after the panics: %q, %v", got, err)
		}
		if o := waitEnded(t, ended); o.err != nil {
			t.Fatalf("after the panics: done %v", o.err)
		}
	}
}
