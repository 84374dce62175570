// Command tcpload is the TCP benchmarks' client. The benchmark runs it inside the
// client's network namespace, so every thread it has is there: a test that switched
// namespace itself would pin each client goroutine to a thread of its own, and at 256
// clients the thread hand-offs would cost the shared cores more than the proxies
// measured. It drives -clients concurrent clients at -addr for -for and prints one
// JSON line: operations completed within that time, failures, and the first error.
//
//	connect: each client connects, reads the server's greeting (-greeting) and its
//	         close, closes, and starts again: new connections.
//	echo:    each client keeps one connection to an echo server, writes -size bytes
//	         and reads them back, again and again: request/response round trips.
//
// Every operation is checked (the greeting's bytes, the echo's), so a proxy that
// answers by itself or drops data counts failures, not operations.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what tcpload prints; the benchmark decodes it.
type Result struct {
	Ops        int64   `json:"ops"`     // operations completed within the measured time
	Seconds    float64 `json:"seconds"` // the measured time
	Failed     int64   `json:"failed"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	mode := flag.String("mode", "", "connect or echo")
	addr := flag.String("addr", "", "host:port to connect to")
	clients := flag.Int("clients", 1, "concurrent clients")
	duration := flag.Duration("for", time.Second, "how long to measure")
	greeting := flag.String("greeting", "hi\n", "connect: what the server sends before it closes")
	size := flag.Int("size", 64, "echo: bytes per round trip")
	flag.Parse()
	var work func(*load)
	switch *mode {
	case "connect":
		work = func(l *load) { l.connect(*addr, []byte(*greeting)) }
	case "echo":
		work = func(l *load) { l.echo(*addr, *size) }
	default:
		fmt.Fprintln(os.Stderr, "tcpload: -mode must be connect or echo")
		os.Exit(2)
	}
	if *addr == "" || *clients < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "tcpload: -addr, -clients ≥ 1 and -for > 0 are required")
		os.Exit(2)
	}
	l := &load{clients: *clients, duration: *duration, started: make(chan struct{})}
	work(l)
	json.NewEncoder(os.Stdout).Encode(l.result())
}

// ioTimeout bounds each connect, read and write: a stalled operation is a failure.
const ioTimeout = 3 * time.Second

// load is one run: its clients, its clock and its counts.
type load struct {
	clients  int
	duration time.Duration
	started  chan struct{} // closed when every client is ready and the clock starts
	start    time.Time
	deadline time.Time

	ops, failed atomic.Int64
	firstErr    sync.Once
	err         error
}

// run starts the clients and waits for them. Each sets itself up (its connection),
// calls ready, which returns when every client is ready and the clock has started, and
// loops while the load is running.
func (l *load) run(client func(ready func())) {
	var ready, done sync.WaitGroup
	ready.Add(l.clients)
	for range l.clients {
		done.Go(func() {
			client(func() {
				ready.Done()
				<-l.started
			})
		})
	}
	ready.Wait()
	l.start = time.Now()
	l.deadline = l.start.Add(l.duration)
	close(l.started)
	done.Wait()
}

// running reports whether the measured time is not over.
func (l *load) running() bool { return time.Now().Before(l.deadline) }

// done counts an operation that completed, if it did within the measured time.
func (l *load) done() {
	if l.running() {
		l.ops.Add(1)
	}
}

func (l *load) fail(err error) {
	l.failed.Add(1)
	l.firstErr.Do(func() { l.err = err })
}

func (l *load) result() Result {
	r := Result{Ops: l.ops.Load(), Seconds: l.duration.Seconds(), Failed: l.failed.Load()}
	if l.err != nil {
		r.FirstError = l.err.Error()
	}
	return r
}

func (l *load) connect(addr string, greeting []byte) {
	l.run(func(ready func()) {
		ready()
		buf := make([]byte, len(greeting)+1)
		for l.running() {
			if err := greeted(addr, greeting, buf); err != nil {
				l.fail(err)
				continue
			}
			l.done()
		}
	})
}

// greeted connects to addr, reads the greeting up to the server's close, and closes.
func greeted(addr string, greeting, buf []byte) error {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	n, err := io.ReadFull(c, buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(buf[:n], greeting) {
		return fmt.Errorf("greeting %q, then %v; want %q and the close", buf[:n], err, greeting)
	}
	return nil
}

func (l *load) echo(addr string, size int) {
	l.run(func(ready func()) {
		c, err := net.DialTimeout("tcp", addr, ioTimeout)
		if err != nil {
			l.fail(err)
			ready()
			return
		}
		defer c.Close()
		ready()
		msg, buf := bytes.Repeat([]byte("e"), size), make([]byte, size)
		for i := 0; l.running(); i++ {
			msg[0] = byte(i) // each answer must be to its own request
			c.SetDeadline(time.Now().Add(ioTimeout))
			if _, err := c.Write(msg); err != nil {
				l.fail(err)
				return
			}
			if _, err := io.ReadFull(c, buf); err != nil {
				l.fail(err)
				return
			}
			if !bytes.Equal(buf, msg) {
				l.fail(fmt.Errorf("echo %q of %q", buf, msg))
				return
			}
			l.done()
		}
	})
}
