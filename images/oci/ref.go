// Package oci resolves OCI image references, pulls images with every digest
// verified, and keeps them in a local content-addressed store, so that
// `vmm run IMAGE` can start from an image it already has without the network.
package oci

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Transport says where an image comes from.
type Transport int

const (
	FromRegistry Transport = iota // a registry reference such as alpine:3.20
	FromLayout                    // oci-layout:DIR[:TAG], an OCI image layout directory
	FromArchive                   // docker-archive:FILE, a `docker save` tarball
)

const (
	layoutPrefix  = "oci-layout:"
	archivePrefix = "docker-archive:"

	// refForms is the accepted syntax, quoted in every bad-reference error.
	refForms = "NAME[:TAG], NAME@DIGEST, oci-layout:DIR[:TAG] or docker-archive:FILE"
)

// Ref is a parsed image reference.
type Ref struct {
	Transport Transport
	// Name is the registry reference, with Docker Hub defaults applied
	// (alpine:3.20 is index.docker.io/library/alpine:3.20). FromRegistry only.
	Name name.Reference
	// Path is the absolute layout directory or archive file.
	Path string
	// Tag selects a layout's image by its org.opencontainers.image.ref.name
	// annotation; empty selects the first image. FromLayout only.
	Tag string

	input string // as the user typed it, for messages
}

// ParseRef parses a registry reference (alpine:3.20,
// ghcr.io/org/app@sha256:...), oci-layout:DIR[:TAG] or docker-archive:FILE.
// For a layout, TAG follows the last colon when what follows has no slash;
// write DIR/ when the directory's own name holds a colon.
func ParseRef(s string) (Ref, error) {
	switch {
	case strings.HasPrefix(s, layoutPrefix):
		return parseLayoutRef(s)
	case strings.HasPrefix(s, archivePrefix):
		path, err := absPath(strings.TrimPrefix(s, archivePrefix), "archive file")
		if err != nil {
			return Ref{}, badRef(s, err)
		}
		return Ref{Transport: FromArchive, Path: path, input: s}, nil
	}
	n, err := name.ParseReference(s)
	if err != nil {
		return Ref{}, badRef(s, parseError(s))
	}
	// Docker Hub's library/ prefix can push a name past the 255-character
	// limit that ParseReference checked before adding it.
	if _, err := name.ParseReference(n.Name()); err != nil {
		return Ref{}, badRef(s, err)
	}
	return Ref{Transport: FromRegistry, Name: n, input: s}, nil
}

func parseLayoutRef(s string) (Ref, error) {
	dir, tag := strings.TrimPrefix(s, layoutPrefix), ""
	if i := strings.LastIndexByte(dir, ':'); i >= 0 && !strings.Contains(dir[i+1:], "/") {
		dir, tag = dir[:i], dir[i+1:]
		if tag == "" {
			return Ref{}, badRef(s, errors.New("empty tag after the last colon"))
		}
	}
	path, err := absPath(dir, "layout directory")
	if err != nil {
		return Ref{}, badRef(s, err)
	}
	return Ref{Transport: FromLayout, Path: path, Tag: tag, input: s}, nil
}

// parseError says what is wrong with a registry reference. ParseReference
// tries a tag and a digest and reports neither failure, only "could not
// parse".
func parseError(s string) error {
	var err error
	if strings.Contains(s, "@") {
		_, err = name.NewDigest(s)
	} else {
		_, err = name.NewTag(s)
	}
	if err == nil {
		return errors.New("not a reference")
	}
	return err
}

func absPath(p, what string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("no %s", what)
	}
	return filepath.Abs(p)
}

// String is the normalized reference: the key under which the store keeps
// the image, and a string ParseRef maps back to the same Ref.
func (r Ref) String() string {
	switch r.Transport {
	case FromLayout:
		s := layoutPrefix + r.Path
		if r.Tag != "" {
			return s + ":" + r.Tag
		}
		if strings.Contains(filepath.Base(r.Path), ":") {
			s += "/" // keep ParseRef from reading the name's tail as a tag
		}
		return s
	case FromArchive:
		return archivePrefix + r.Path
	}
	if r.Name == nil {
		return ""
	}
	return r.Name.Name()
}

// display returns the reference as typed, or the normalized one for a Ref
// built by hand.
func (r Ref) display() string {
	if r.input != "" {
		return r.input
	}
	return r.String()
}

// where names the registry, directory or file the image comes from.
func (r Ref) where() string {
	switch r.Transport {
	case FromLayout:
		return "oci-layout directory " + r.Path
	case FromArchive:
		return "docker-archive file " + r.Path
	}
	if r.Name == nil {
		return ""
	}
	return r.Name.Context().RegistryStr()
}

func badRef(s string, err error) error {
	return &Error{Kind: ErrBadRef, Ref: s, Err: err}
}
