package logging

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// OpenIn returns a logger at level for a caller more privileged than whoever wrote
// file, such as the CNI plugin: root on the node, configured by a namespace admin. It
// writes only in dir (creating dir itself, never its parents):
//   - to file if it names a file directly in dir;
//   - to dir/<name>.log (name made safe as a file name) for any other path, with a
//     warning line saying so;
//   - to fallback, with one warning, when that file cannot be opened, is a symlink or
//     is not a regular file (a FIFO is never waited on);
//   - to fallback, without a word, when file is "".
//
// It never fails: a log file must not be why a command fails. Close the closer when done.
func OpenIn(dir, file, name string, level slog.Level, fallback io.Writer) (*slog.Logger, io.Closer) {
	if file == "" {
		return New(fallback, level), io.NopCloser(nil)
	}
	base, inDir := fileIn(dir, file)
	if !inDir {
		base = fileNameFor(name)
	}
	f, err := openRegular(dir, base)
	if err != nil {
		log := New(fallback, level)
		log.Warn("cannot write the log file; logging to stderr", "log_file", file, "error", err)
		return log, io.NopCloser(nil)
	}
	log := New(f, level)
	if !inDir {
		log.Warn("log_file is outside the log directory; logging to this file instead", "log_file", file, "log_dir", dir, "file", f.Name())
	}
	return log, f
}

// fileIn returns the name of file in dir, if that is where file is: directly in it,
// as written, without a "..". Files in subdirectories are refused too, so only the
// last path element is ever opened, and O_NOFOLLOW covers every symlink that matters.
func fileIn(dir, file string) (string, bool) {
	if !filepath.IsAbs(file) || filepath.Clean(file) != file {
		return "", false
	}
	parent, base := filepath.Split(file)
	if filepath.Clean(parent) != filepath.Clean(dir) {
		return "", false
	}
	return base, base != ""
}

// maxNameLen caps the file name derived from a network name, well below NAME_MAX.
const maxNameLen = 64

// fileNameFor derives a log file name from a network name: letters, digits, '-', '_'
// and '.' are kept, anything else becomes '_', leading dots go (no hidden file, no "."
// or ".."), and the result is capped.
func fileNameFor(name string) string {
	b := []byte(strings.TrimLeft(strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name), "."))
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	if len(b) == 0 {
		return "egress-router.log"
	}
	return string(b) + ".log"
}

// openRegular opens dir/name for appending, creating it 0640 and dir 0750 if missing.
// dir is opened first, refusing a symlink there too (whoever may write its parent could
// point it anywhere), and name is opened in that very directory. name is one path
// element: O_NOFOLLOW refuses a symlink there, O_NONBLOCK keeps a FIFO from blocking the
// open, and the file is kept only if it is a regular file.
func openRegular(dir, name string) (*os.File, error) {
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("create the log directory: %w", err)
	}
	dirFD, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the log directory %s (a symlink is refused): %w", dir, err)
	}
	defer syscall.Close(dirFD)
	path := filepath.Join(dir, name)
	fd, err := syscall.Openat(dirFD, name, syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (%s)", path, info.Mode().Type())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
