package workload

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strconv"
	"strings"
)

// User is who the workload runs as.
type User struct {
	Name string // the passwd entry's name; empty when there is none
	UID  uint32
	GID  uint32
	// Groups is the setgroups(2) list: GID first, then the supplementary
	// groups (docker's AdditionalGids).
	Groups []uint32
	Home   string
}

// Errors for a user spec the image cannot satisfy.
var (
	ErrUnknownUser  = errors.New("no matching entry in /etc/passwd")
	ErrUnknownGroup = errors.New("no matching entry in /etc/group")
	ErrIDRange      = errors.New("id out of range")
)

// maxID is the largest uid or gid docker accepts (moby/sys/user).
const maxID = math.MaxInt32

// LookupUser resolves a user spec (docker's -u or the image's User) in
// the image's /etc/passwd and /etc/group, with the rules of
// moby/sys/user.GetExecUser that docker uses:
//
//   - "" is uid 0, with root's passwd entry when there is one.
//   - A numeric user is a uid; its passwd entry, if any, gives the gid,
//     home and name. A name must have an entry.
//   - A group, numeric or named, replaces the primary gid; a named one
//     must exist. Only without an explicit group does a user found in
//     passwd get supplementary groups: every group that lists its name.
//   - HOME is the entry's home directory, else /.
//
// Missing files count as empty, so numeric ids work on any image.
func LookupUser(rootfs fs.FS, spec string) (User, error) {
	userArg, groupArg, _ := strings.Cut(spec, ":")
	u := User{Home: "/"}
	uid, uidNumeric, err := parseID(userArg)
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", userArg, err)
	}
	users, err := readPasswd(rootfs)
	if err != nil {
		return User{}, err
	}
	var found bool
	for _, p := range users {
		if userArg == "" && p.uid == 0 || uidNumeric && p.uid == uid || !uidNumeric && userArg != "" && p.name == userArg {
			u.Name, u.UID, u.GID, found = p.name, p.uid, p.gid, true
			if p.home != "" {
				u.Home = p.home
			}
			break
		}
	}
	switch {
	case !found && userArg != "" && !uidNumeric:
		return User{}, fmt.Errorf("user %q: %w", userArg, ErrUnknownUser)
	case !found:
		u.UID = uid
	}
	if groupArg == "" && u.Name == "" {
		u.Groups = []uint32{u.GID}
		return u, nil
	}
	groups, err := readGroup(rootfs)
	if err != nil {
		return User{}, err
	}
	if groupArg != "" {
		u.GID, err = lookupGroup(groups, groupArg)
		if err != nil {
			return User{}, err
		}
		u.Groups = []uint32{u.GID}
		return u, nil
	}
	u.Groups = []uint32{u.GID}
	for _, g := range groups {
		for _, member := range g.members {
			if member == u.Name {
				u.Groups = append(u.Groups, g.gid)
				break
			}
		}
	}
	return u, nil
}

func lookupGroup(groups []groupEntry, arg string) (uint32, error) {
	gid, numeric, err := parseID(arg)
	if err != nil {
		return 0, fmt.Errorf("group %q: %w", arg, err)
	}
	for _, g := range groups {
		if numeric && g.gid == gid || !numeric && g.name == arg {
			return g.gid, nil
		}
	}
	if !numeric {
		return 0, fmt.Errorf("group %q: %w", arg, ErrUnknownGroup)
	}
	return gid, nil
}

// parseID reads a uid or gid. Only digits make a number: anything else
// is a name.
func parseID(s string) (id uint32, numeric bool, err error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, true, fmt.Errorf("%w: want 0 to %d", ErrIDRange, maxID)
	}
	return uint32(n), true, nil
}
