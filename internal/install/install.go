// Package install puts files where another program reads or executes them, such as
// the plugin in a node's CNI bin directory or the node policy beside the CNI
// configuration, so that the other program never sees a partial file: the content is
// written under a temporary name in the same directory, flushed, given its mode and
// renamed over the final name in one step.
package install

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Mode is the permission an installed binary gets: executable by the container
// runtime, writable only by its owner.
const Mode fs.FileMode = 0o755

// Binary installs the file src as dir/name and reports whether it wrote anything. An
// identical file already in place (same content, same mode) is left alone, so reruns
// on every pod restart cost one read. Anything else under that name, such as an older
// binary, is replaced by the rename; a runtime executing the old file at that moment
// keeps its open copy.
func Binary(src, dir, name string) (bool, error) {
	want, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("read the binary to install: %w", err)
	}
	return File(dir, name, want, Mode)
}

// File installs content as dir/name with mode and reports whether it wrote anything:
// a regular file with the same content and mode is left alone.
func File(dir, name string, content []byte, mode fs.FileMode) (bool, error) {
	dst := filepath.Join(dir, name)
	if same, err := identical(dst, content, mode); err != nil {
		return false, err
	} else if same {
		return false, nil
	}
	if err := writeAtomically(dir, name, content, mode); err != nil {
		return false, fmt.Errorf("install %s: %w", dst, err)
	}
	return true, nil
}

// Remove removes dir/name, durably, and reports whether there was anything to remove.
func Remove(dir, name string) (bool, error) {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("remove %s: %w", filepath.Join(dir, name), err)
	}
	return true, syncDir(dir)
}

// identical reports whether path is a regular file with exactly content and mode.
func identical(path string, content []byte, mode fs.FileMode) (bool, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", path, err)
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != mode || info.Size() != int64(len(content)) {
		return false, nil
	}
	have, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read the installed %s: %w", path, err)
	}
	return bytes.Equal(have, content), nil
}

// writeAtomically writes content to a temporary file in dir (a rename is atomic only
// within one file system) and renames it to name. On any failure the temporary file is
// removed and the previous dir/name, if any, is untouched.
func writeAtomically(dir, name string, content []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(dir, tempPrefix(name)+"*")
	if err != nil {
		return fmt.Errorf("create a temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, bytes.NewReader(content)); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	// CreateTemp makes the file 0600; Chmod on the open file is not subject to umask.
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	// Flushed before the rename, so a crash cannot leave the final name pointing at a
	// file whose blocks never reached the disk.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	return syncDir(dir)
}

// tempPrefix is how the temporary file of an installation of name starts: hidden, so
// a runtime listing the directory for plugins or configurations does not pick it up.
func tempPrefix(name string) string { return "." + name + ".tmp-" }

// syncDir makes the rename itself durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s to sync it: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
