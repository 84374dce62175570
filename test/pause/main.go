// Command pause holds a container, and so its network namespace, until it is stopped,
// like Kubernetes' pause image. The podman end-to-end test runs it for redirect mode,
// where the kernel does all the work and the container none.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
