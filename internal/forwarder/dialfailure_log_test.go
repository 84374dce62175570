package forwarder

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/egress-router/egress-router/test/capture"
	"github.com/egress-router/egress-router/test/wait"
)

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
	logs := &capture.Buffer{}
	f := &Forwarder{Log: slog.New(slog.NewJSONHandler(logs, nil))}
	start(t, f, cfg(t, fmt.Sprintf("7221 127.0.0.1 %d", closedPort(t))))
	const burst = 5 * dialFailureLogsPerSecond
	for range burst {
		dial(t, f, 7221).closedAtOnce(t)
	}
	wait.For(t, 5*time.Second, "every connection to fail", func() bool {
		return metric(t, f, "egress_dns_proxy_dial_errors_total") == burst
	})
	// The burst may straddle a second boundary: two seconds' budget at most.
	if n := strings.Count(logs.String(), "cannot reach the destination"); n > 2*dialFailureLogsPerSecond {
		t.Fatalf("%d lines for %d failures, want at most %d", n, burst, 2*dialFailureLogsPerSecond)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	dial(t, f, 7221).closedAtOnce(t)
	wait.For(t, 5*time.Second, "the dropped count", func() bool { return strings.Count(logs.String(), "suppressed by the rate limit") == 1 })
}
