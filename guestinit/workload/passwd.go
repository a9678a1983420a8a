package workload

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Where the image keeps its users and groups, as fs.FS paths.
const (
	passwdFile = "etc/passwd"
	groupFile  = "etc/group"
)

// maxEntryLine bounds one passwd or group line; a group of many members
// can pass bufio's default 64 KiB.
const maxEntryLine = 1 << 20

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// readPasswd parses passwd(5): name:password:uid:gid:gecos:home:shell.
func readPasswd(rootfs fs.FS) ([]passwdEntry, error) {
	var entries []passwdEntry
	err := readEntries(rootfs, passwdFile, func(f []string) {
		uid, ok1 := atoi(f, 2)
		gid, ok2 := atoi(f, 3)
		if ok1 && ok2 {
			entries = append(entries, passwdEntry{name: f[0], uid: uid, gid: gid, home: field(f, 5)})
		}
	})
	return entries, err
}

// readGroup parses group(5): name:password:gid:member,member.
func readGroup(rootfs fs.FS) ([]groupEntry, error) {
	var entries []groupEntry
	err := readEntries(rootfs, groupFile, func(f []string) {
		gid, ok := atoi(f, 2)
		if !ok {
			return
		}
		g := groupEntry{name: f[0], gid: gid}
		for _, m := range strings.Split(field(f, 3), ",") {
			if m = strings.TrimSpace(m); m != "" {
				g.members = append(g.members, m)
			}
		}
		entries = append(entries, g)
	})
	return entries, err
}

// readEntries calls entry with the colon-separated fields of each line.
// Blank lines and # comments are skipped; a missing file has no lines.
func readEntries(rootfs fs.FS, name string, entry func([]string)) error {
	data, err := fs.ReadFile(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read /%s: %w", name, err)
	}
	s := bufio.NewScanner(bytes.NewReader(data))
	s.Buffer(nil, maxEntryLine)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		entry(strings.Split(line, ":"))
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("read /%s: %w", name, err)
	}
	return nil
}

func field(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// atoi reads a numeric field. moby/sys/user takes an unreadable id as 0,
// which makes a malformed line (or a NIS "+" line) root; such lines are
// skipped here instead.
func atoi(f []string, i int) (uint32, bool) {
	n, err := strconv.ParseUint(field(f, i), 10, 32)
	return uint32(n), err == nil && n <= maxID
}
