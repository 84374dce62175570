package forwarder

import (
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the connections' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

// closedPort returns a port of 127.0.0.1 that refuses connections.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A dead destination fails every connection; the log says so within a budget per
// second and then how many lines it dropped, instead of one line per connection.
func TestDialFailuresAreLoggedWithinABudgetWithTheDroppedCount(t *testing.T) {
	logs := &syncBuffer{}
	f := &Forwarder{Log: slog.New(slog.NewJSONHandler(logs, nil))}
	start(t, f, cfg(t, fmt.Sprintf("7221 127.0.0.1 %d", closedPort(t))))
	const burst = 5 * dialFailureLogsPerSecond
	for range burst {
		dial(t, f, 7221).closedAtOnce(t)
	}
	eventually(t, "every connection to fail", func() bool {
		return metric(t, f, "egress_dns_proxy_dial_errors_total") == burst
	})
	// The burst may straddle a second boundary: two seconds' budget at most.
	if n := logs.count("cannot reach the destination"); n > 2*dialFailureLogsPerSecond {
		t.Fatalf("%d lines for %d failures, want at most %d", n, burst, 2*dialFailureLogsPerSecond)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	dial(t, f, 7221).closedAtOnce(t)
	eventually(t, "the dropped count", func() bool { return logs.count("suppressed by the rate limit") == 1 })
}
