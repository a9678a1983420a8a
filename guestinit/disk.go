package guestinit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vmm-dev/vmm/guestinit/protocol"
)

// diskFiles does the disk check's file work on a filesystem already
// mounted at root: it hashes d.Hash, then writes d.Data to d.Write and
// flushes it. Paths are confined to root.
func diskFiles(root string, d protocol.DiskCheck) protocol.Result {
	kv := []string{"dev", d.Device}
	if d.Hash != "" {
		sum, err := sha256Of(inside(root, d.Hash))
		if err != nil {
			return protocol.Failed(protocol.CheckDisk, fmt.Errorf("hash %s: %w", d.Hash, err))
		}
		kv = append(kv, "hash", d.Hash, "sha256", sum)
	}
	if d.Write != "" {
		if err := writeSynced(inside(root, d.Write), d.Data); err != nil {
			return protocol.Failed(protocol.CheckDisk, fmt.Errorf("write %s: %w", d.Write, err))
		}
		kv = append(kv, "wrote", d.Write, "bytes", strconv.Itoa(len(d.Data)))
	}
	return protocol.Passed(protocol.CheckDisk, kv...)
}

// inside joins p to root without letting ".." climb out of it.
func inside(root, p string) string {
	return filepath.Join(root, filepath.Clean("/"+p))
}

func sha256Of(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// writeSynced writes data to path and fsyncs the file and its directory,
// so the new entry is on the disk, not only in the page cache.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	if err := errors.Join(werr, serr, f.Close()); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}
