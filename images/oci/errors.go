package oci

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Conditions a caller can branch on with errors.Is. Every failure to get an
// image that falls under one of them is an *Error with that Kind.
var (
	ErrBadRef      = errors.New("invalid image reference")
	ErrNotFound    = errors.New("image not found")
	ErrUnreachable = errors.New("registry unreachable")
	ErrAuth        = errors.New("registry denied access")
	ErrCorrupt     = errors.New("image content does not match its digest")
	ErrNoSource    = errors.New("image source does not exist")
)

// Error is a failure a person can act on. Its text is one line naming the
// image and where it was looked for.
type Error struct {
	Kind  error  // one of the Err* conditions above
	Ref   string // the reference as the user typed it
	Where string // registry host, layout directory or archive file
	Err   error  // the cause; may be nil
}

func (e *Error) Error() string {
	switch e.Kind {
	case ErrBadRef:
		return fmt.Sprintf("invalid image reference %q: %v; use %s", e.Ref, e.Err, refForms)
	case ErrNotFound:
		if strings.HasPrefix(e.Ref, e.Where+"/") {
			return fmt.Sprintf("image %s not found: check the name and the tag or digest", e.Ref)
		}
		return fmt.Sprintf("image %s not found in %s: check the name and the tag or digest", e.Ref, e.Where)
	case ErrUnreachable:
		return fmt.Sprintf("cannot reach registry %s for %s: %v; check the address and the network (images already stored, see `vmm images`, work offline)",
			e.Where, e.Ref, netCause(e.Err))
	case ErrAuth:
		return fmt.Sprintf("registry %s denied access to %s: check the name, or log in (docker login %s)", e.Where, e.Ref, e.Where)
	case ErrCorrupt:
		var de *digestError
		cause := e.Err
		if errors.As(e.Err, &de) {
			cause = de
		}
		return fmt.Sprintf("image %s from %s is corrupt: %v; nothing of it was stored: pull again, and if it persists the registry (or a proxy) serves bad data",
			e.Ref, e.Where, cause)
	case ErrNoSource:
		if errors.Is(e.Err, fs.ErrNotExist) {
			return fmt.Sprintf("%s does not exist", e.Where)
		}
		return fmt.Sprintf("cannot read %s: %v", e.Where, e.Err)
	}
	return fmt.Sprintf("image %s: %v", e.Ref, e.Err)
}

// Unwrap lets errors.Is match both the Kind and the cause.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// netCause digs the dial or DNS error out of go-containerregistry's
// wrapping, which repeats the URL once per scheme it tried.
func netCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op
	}
	return err
}

// classify turns an error from pulling ref into an *Error when it is one a
// person can act on, and wraps it with the reference otherwise.
func classify(ref Ref, err error) error {
	var e *Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	mk := func(kind error) error {
		return &Error{Kind: kind, Ref: ref.display(), Where: ref.where(), Err: err}
	}
	var de *digestError
	var te *transport.Error
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// Before net.Error: a deadline also satisfies that interface.
	case errors.As(err, &de):
		return mk(ErrCorrupt)
	case errors.As(err, &te):
		if kind := registryErrorKind(te); kind != nil {
			return mk(kind)
		}
	case errors.As(err, &ne):
		return mk(ErrUnreachable)
	}
	if ref.Transport != FromRegistry {
		return fmt.Errorf("read %s: %w", ref.where(), err)
	}
	return fmt.Errorf("pull %s: %w", ref.display(), err)
}

// registryErrorKind maps a registry's HTTP error to a condition. Docker Hub
// answers 401, not 404, for a repository that does not exist.
func registryErrorKind(te *transport.Error) error {
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
			return ErrNotFound
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return ErrAuth
		}
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		// A missing blob is the registry's fault, not a missing image.
		if te.Request == nil || strings.Contains(te.Request.URL.Path, "/manifests/") {
			return ErrNotFound
		}
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrAuth
	}
	return nil
}

// digestError reports content that is not what its digest names.
type digestError struct {
	want     v1.Hash
	got      v1.Hash // zero when the size was wrong
	size     int64   // bytes seen
	wantSize int64
}

func (e *digestError) Error() string {
	if e.got == (v1.Hash{}) {
		return fmt.Sprintf("blob %s: got %d bytes, want %d", e.want, e.size, e.wantSize)
	}
	return fmt.Sprintf("blob %s: content hashes to %s", e.want, e.got)
}
