package relay

import "sync/atomic"

// maxSpare bounds the goroutines kept waiting for work: enough for the connections a
// busy proxy sets up at once, few enough (each keeps a grown stack, some kilobytes)
// that the end of a burst of thousands does not leave thousands behind.
const maxSpare = 128

// spare is the goroutines that finished a function and wait for the next one.
var spare = struct {
	work chan func() // unbuffered: a send succeeds only if a goroutine waits
	idle atomic.Int32
}{work: make(chan func())}

// Go runs f on a goroutine, reusing one that finished an earlier f if one is waiting.
// A new goroutine starts with a small stack and grows it, copying it each time, as a
// connection's dial and relay calls go deeper: about a tenth of the DNS proxy's CPU
// per new connection, measured at thousands a second. A reused one has grown already.
// RunThen uses it for its second direction; a proxy can use it for each connection.
func Go(f func()) {
	select {
	case spare.work <- f:
	default:
		go runSpare(f)
	}
}

// runSpare runs f, then waits for the next function, unless maxSpare wait already.
func runSpare(f func()) {
	for {
		f()
		if spare.idle.Add(1) > maxSpare {
			spare.idle.Add(-1)
			return
		}
		f = <-spare.work
		spare.idle.Add(-1)
	}
}
