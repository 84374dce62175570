// Package reload tells a proxy when its configuration file has new content: on SIGHUP,
// and when the file changes. A mounted ConfigMap updates the file by swapping a
// symlink, which inotify on the file itself misses; polling the content through the
// path (re-resolved each time) sees every form of update, at the cost of a read every
// few seconds.
package reload

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Watcher calls Apply with the file's content whenever it differs from the content
// last applied successfully, or on SIGHUP.
type Watcher struct {
	Path string
	// Interval between polls; zero means 2 seconds.
	Interval time.Duration
	// Apply takes new content. On error the caller keeps its old configuration; the
	// watcher logs the error and offers the same content again only on SIGHUP.
	Apply func(data []byte) error
	Log   *slog.Logger
}

// Start watches until ctx ends; the returned channel is closed once it has stopped.
// current is the content already in effect. SIGHUP is taken over before Start
// returns: its default action ends the process, and a SIGHUP sent right after start
// must reload, not kill.
func (w *Watcher) Start(ctx context.Context, current []byte) <-chan struct{} {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		defer signal.Stop(hup)
		w.run(ctx, current, hup)
	}()
	return stopped
}

func (w *Watcher) run(ctx context.Context, current []byte, hup <-chan os.Signal) {
	interval := w.Interval
	if interval == 0 {
		interval = 2 * time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	last := current // the content last offered, applied or refused
	for {
		forced := false
		select {
		case <-ctx.Done():
			return
		case <-hup:
			forced = true
		case <-tick.C:
		}
		data, err := os.ReadFile(w.Path)
		if err != nil {
			w.Log.Error("configuration reload: cannot read the file; keeping the current configuration", "path", w.Path, "error", err)
			continue
		}
		if !forced && bytes.Equal(data, last) {
			continue
		}
		last = data
		if err := w.Apply(data); err != nil {
			w.Log.Error("configuration reload refused; keeping the current configuration", "path", w.Path, "error", err)
			continue
		}
		w.Log.Info("configuration reloaded", "path", w.Path)
	}
}
