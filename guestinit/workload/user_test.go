package workload

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func testRootfs() fstest.MapFS {
	return fstest.MapFS{
		"etc/passwd": {Data: []byte(`root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

# a comment:x:5:5::/c:
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001::/home/bob:/bin/sh
  nohome:x:1002:1002:::  
twin:x:1000:7::/twin:/bin/sh
+::::::
broken:x:abc:0::/broken:
`)},
		"etc/group": {Data: []byte(`root:x:0:root
wheel:x:10:root,alice
staff:x:50:alice, bob
alice:x:1000:
bob:x:1001:
docker:x:999:alice
broken:x:x:alice
`)},
	}
}

func TestLookupUser(t *testing.T) {
	for _, tt := range []struct {
		spec string
		want User
	}{
		{"", User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0, 0, 10}, Home: "/root"}},
		{"root", User{Name: "root", UID: 0, GID: 0, Groups: []uint32{0, 0, 10}, Home: "/root"}},
		{"alice", User{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 50, 999}, Home: "/home/alice"}},
		// A uid finds its entry (the first of two), supplementary groups too.
		{"1000", User{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 50, 999}, Home: "/home/alice"}},
		{"bob", User{Name: "bob", UID: 1001, GID: 1001, Groups: []uint32{1001, 50}, Home: "/home/bob"}},
		// An explicit group replaces the primary one and drops the rest.
		{"alice:staff", User{Name: "alice", UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/alice"}},
		{"alice:50", User{Name: "alice", UID: 1000, GID: 50, Groups: []uint32{50}, Home: "/home/alice"}},
		{"alice:4242", User{Name: "alice", UID: 1000, GID: 4242, Groups: []uint32{4242}, Home: "/home/alice"}},
		{"1000:1000", User{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{1000}, Home: "/home/alice"}},
		{"alice:", User{Name: "alice", UID: 1000, GID: 1000, Groups: []uint32{1000, 10, 50, 999}, Home: "/home/alice"}},
		{":staff", User{Name: "root", UID: 0, GID: 50, Groups: []uint32{50}, Home: "/root"}},
		// Numeric ids need no entries.
		{"4242", User{UID: 4242, GID: 0, Groups: []uint32{0}, Home: "/"}},
		{"4242:4343", User{UID: 4242, GID: 4343, Groups: []uint32{4343}, Home: "/"}},
		{"2147483647", User{UID: 2147483647, Groups: []uint32{0}, Home: "/"}},
		{"nohome", User{Name: "nohome", UID: 1002, GID: 1002, Groups: []uint32{1002}, Home: "/"}},
	} {
		got, err := LookupUser(testRootfs(), tt.spec)
		if err != nil {
			t.Errorf("LookupUser(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LookupUser(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestLookupUser_Errors(t *testing.T) {
	for _, tt := range []struct {
		spec    string
		wantErr error
		naming  string
	}{
		{"mallory", ErrUnknownUser, `user "mallory"`},
		{"broken", ErrUnknownUser, `user "broken"`}, // its uid is not a number: skipped, not root
		{"+", ErrUnknownUser, `user "+"`},
		{"alice:nogroup", ErrUnknownGroup, `group "nogroup"`},
		{"4242:nogroup", ErrUnknownGroup, `group "nogroup"`},
		{"2147483648", ErrIDRange, `user "2147483648"`},
		{"99999999999999999999999", ErrIDRange, "user"},
		{"alice:4294967296", ErrIDRange, `group "4294967296"`},
	} {
		_, err := LookupUser(testRootfs(), tt.spec)
		if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.naming) {
			t.Errorf("LookupUser(%q) = %v, want %v naming %s", tt.spec, err, tt.wantErr, tt.naming)
		}
	}
}

func TestLookupUser_NoFiles_NumericOnly(t *testing.T) {
	got, err := LookupUser(fstest.MapFS{}, "1000:1000")
	if want := (User{UID: 1000, GID: 1000, Groups: []uint32{1000}, Home: "/"}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("LookupUser(1000:1000) = %+v, %v; want %+v", got, err, want)
	}
	got, err = LookupUser(fstest.MapFS{}, "")
	if want := (User{Groups: []uint32{0}, Home: "/"}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("LookupUser(\"\") = %+v, %v; want %+v", got, err, want)
	}
	if _, err := LookupUser(fstest.MapFS{}, "alice"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("LookupUser(alice) without /etc/passwd = %v, want ErrUnknownUser", err)
	}
}

func TestLookupUser_UnreadablePasswd_Error(t *testing.T) {
	rootfs := fstest.MapFS{"etc/passwd": {Mode: fs.ModeDir | 0o755}}
	if _, err := LookupUser(rootfs, "alice"); err == nil || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("LookupUser with /etc/passwd a directory = %v, want a read error", err)
	}
}
