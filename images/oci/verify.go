package oci

import (
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// verifier hashes what passes through it and fails the read that completes
// the content, or the one that overruns it, when the content is not what
// want names. go-containerregistry verifies too, but its error type is
// internal; this one lets classify report ErrCorrupt.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want v1.Hash
	size int64 // -1: unknown, checked at EOF
	n    int64
	ok   bool // the whole content was read and matched
}

func newVerifier(r io.Reader, want v1.Hash, size int64) (*verifier, error) {
	h, err := v1.Hasher(want.Algorithm)
	if err != nil {
		return nil, err
	}
	return &verifier{r: r, h: h, want: want, size: size}, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.size >= 0 && int64(len(p)) > v.size+1-v.n {
		p = p[:v.size+1-v.n] // one byte past the end is enough to see an overrun
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.size >= 0 && v.n > v.size:
		return n, v.sizeError()
	case v.size >= 0 && v.n == v.size && !v.ok:
		// Check now: callers that know the size (go-containerregistry
		// among them) stop reading here and never see EOF.
		if cerr := v.check(); cerr != nil {
			return n, cerr
		}
	case err == io.EOF && v.size >= 0 && v.n < v.size:
		return n, v.sizeError()
	case err == io.EOF && v.size < 0:
		if cerr := v.check(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (v *verifier) check() error {
	if got := sum(v.h, v.want.Algorithm); got != v.want {
		return &digestError{want: v.want, got: got, size: v.n, wantSize: v.size}
	}
	v.ok = true
	return nil
}

func sum(h hash.Hash, algorithm string) v1.Hash {
	return v1.Hash{Algorithm: algorithm, Hex: hex.EncodeToString(h.Sum(nil))}
}

// checkDigest returns a digestError when raw is not the content want names.
func checkDigest(raw []byte, want v1.Hash) error {
	h, err := v1.Hasher(want.Algorithm)
	if err != nil {
		return err
	}
	h.Write(raw)
	if got := sum(h, want.Algorithm); got != want {
		return &digestError{want: want, got: got, size: int64(len(raw)), wantSize: int64(len(raw))}
	}
	return nil
}

func (v *verifier) sizeError() error {
	return &digestError{want: v.want, size: v.n, wantSize: v.size}
}

// verifyTransport checks every registry response addressed by digest
// (GET /v2/NAME/blobs/DIGEST and /v2/NAME/manifests/DIGEST) as it is read.
type verifyTransport struct {
	next http.RoundTripper
}

func (t verifyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || req.Method != http.MethodGet || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	want, ok := addressedDigest(req)
	if !ok {
		return resp, nil
	}
	v, verr := newVerifier(resp.Body, want, resp.ContentLength)
	if verr != nil {
		return resp, nil // an algorithm we cannot hash: go-containerregistry decides
	}
	resp.Body = struct {
		io.Reader
		io.Closer
	}{v, resp.Body}
	return resp, nil
}

// addressedDigest returns the digest a registry request asks for. A
// redirected request (blobs often move to a CDN) carries the original one
// in its chain of Responses.
func addressedDigest(req *http.Request) (v1.Hash, bool) {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	p := req.URL.Path
	if !strings.HasPrefix(p, "/v2/") {
		return v1.Hash{}, false
	}
	dir, last := path.Split(p)
	if kind := path.Base(dir); kind != "blobs" && kind != "manifests" {
		return v1.Hash{}, false
	}
	h, err := v1.NewHash(last)
	return h, err == nil
}
