package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/egress-router/egress-router/internal/install"
	"github.com/egress-router/egress-router/internal/nodepolicy"
)

// policyMode lets an admin on the node read the policy; only root writes it.
const policyMode fs.FileMode = 0o644

// policyDelivery keeps the node's policy file (nodepolicy.FileName in dir) equal to
// the one in the installer's ConfigMap, mounted at source. The kubelet updates a
// mounted ConfigMap in place and empties it when the ConfigMap is deleted, so reading
// source again every so often follows both.
type policyDelivery struct {
	source string
	dir    string
	every  time.Duration
	// rejected is the invalid source last reported (while rejecting), so it is
	// logged once, not on every poll.
	rejecting bool
	rejected  []byte
}

// sync makes the node's file follow source once. A valid policy is installed
// atomically (a plugin command reading it sees the old or the new one, never a mix);
// no source file, the ConfigMap gone, removes the node's file (the defaults apply);
// a source that cannot be read or is not a valid policy is reported and leaves the
// node's file as it was: a broken ConfigMap must not weaken the node.
func (d *policyDelivery) sync(log *slog.Logger) {
	dst := filepath.Join(d.dir, nodepolicy.FileName)
	content, err := os.ReadFile(d.source)
	if errors.Is(err, fs.ErrNotExist) {
		d.rejecting = false
		if removed, err := install.Remove(d.dir, nodepolicy.FileName); err != nil {
			log.Error("cannot remove the node policy", "error", err)
		} else if removed {
			log.Info("the node policy ConfigMap is gone: removed the node's policy, the defaults apply", "path", dst)
		}
		return
	}
	if err == nil {
		_, err = nodepolicy.Parse(content)
	}
	if err != nil {
		if !d.rejecting || !bytes.Equal(content, d.rejected) {
			log.Error("the node policy ConfigMap is not valid; the node's policy is left as it was", "source", d.source, "path", dst, "error", err)
		}
		d.rejecting, d.rejected = true, content
		return
	}
	d.rejecting = false
	if wrote, err := install.File(d.dir, nodepolicy.FileName, content, policyMode); err != nil {
		log.Error("cannot install the node policy", "error", err)
	} else if wrote {
		log.Info("installed the node policy", "path", dst)
	}
}

// run syncs every d.every until ctx ends.
func (d *policyDelivery) run(ctx context.Context, log *slog.Logger) {
	tick := time.NewTicker(d.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			d.sync(log)
		}
	}
}
