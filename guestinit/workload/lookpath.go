package workload

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// LookPath finds the program file names, as execvp(3) and runc do, inside
// the directory tree root as the workload will see it (root "/" once
// guestinit has switched into the image). A name with a slash is used as
// it is. Otherwise each directory of pathList (a PATH value) is tried in
// order; relative entries, and empty ones, which mean ".", are relative
// to dir, the working directory. The first regular file with an execute
// bit wins. The path returned is the one to exec inside root. The error
// is an *exec.Error, which reads as docker's ("executable file not found
// in $PATH").
func LookPath(root, dir, file, pathList string) (string, error) {
	return LookPathFunc(dir, file, pathList, func(name string) bool { return isExecutable(root, name) })
}

// LookPathFunc is LookPath with the test for "a regular file with an
// execute bit" given as executable, called with each candidate path as the
// program would see it: for callers that reach the root another way (the
// guest agent resolves paths with openat2).
func LookPathFunc(dir, file, pathList string, executable func(name string) bool) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	if file != "" {
		for _, entry := range filepath.SplitList(pathList) {
			candidate := path.Join(entry, file)
			if !path.IsAbs(candidate) {
				candidate = path.Join(dir, candidate)
			}
			if executable(candidate) {
				return candidate, nil
			}
		}
	}
	return "", &exec.Error{Name: file, Err: exec.ErrNotFound}
}

func isExecutable(root, name string) bool {
	p, err := inRoot(root, name)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
