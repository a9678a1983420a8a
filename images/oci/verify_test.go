package oci

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// go-containerregistry's own check, without this package: a remote layer
// with a flipped byte reads without complaint until EOF, and the error then
// is an internal type that only its text identifies.
func TestRemoteLayer_FlippedByte_FailsOnlyAtEOF(t *testing.T) {
	reg := newTestRegistry(t)
	img := randomImage(t, 1)
	ref := reg.push(t, "test/img:v1", img)
	layers, _ := img.Layers()
	d, _ := layers[0].Digest()
	reg.setFlip("/blobs/" + d.String())

	rimg, err := remote.Image(ref.Name)
	if err != nil {
		t.Fatal(err)
	}
	l, err := rimg.LayerByDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 16)); err != nil {
		t.Fatalf("a partial read failed: %v; expected gcr to check only at EOF", err)
	}
	_, err = io.ReadAll(rc)
	if err == nil || !strings.Contains(err.Error(), "error verifying sha256 checksum") {
		t.Fatalf("reading to EOF: %v, want gcr's checksum error", err)
	}
	var de *digestError
	if errors.As(err, &de) {
		t.Error("gcr's error unexpectedly carries this package's type")
	}
}

func TestVerifier(t *testing.T) {
	content := []byte("the quick brown fox")
	want, _, _ := v1.SHA256(bytes.NewReader(content))
	flipped := append([]byte(nil), content...)
	flipped[3] ^= 1
	for _, tc := range []struct {
		name    string
		data    []byte
		size    int64
		wantErr bool
	}{
		{"exact", content, int64(len(content)), false},
		{"exact, size unknown", content, -1, false},
		{"flipped byte", flipped, int64(len(content)), true},
		{"flipped byte, size unknown", flipped, -1, true},
		{"short", content[:5], int64(len(content)), true},
		{"long", append(append([]byte(nil), content...), 'x'), int64(len(content)), true},
		{"empty for content", nil, int64(len(content)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// OneByteReader: the check must hold however reads are split.
			v, err := newVerifier(iotest.OneByteReader(bytes.NewReader(tc.data)), want, tc.size)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(v)
			var de *digestError
			if got := errors.As(err, &de); got != tc.wantErr {
				t.Fatalf("error %v, want a digestError: %v", err, tc.wantErr)
			}
			if !tc.wantErr && !v.ok {
				t.Error("read completed but not marked verified")
			}
		})
	}
}

func TestVerifier_KnownSize_FailsBeforeEOF(t *testing.T) {
	content := []byte("layer bytes")
	want, _, _ := v1.SHA256(bytes.NewReader(content))
	bad := append([]byte(nil), content...)
	bad[0] ^= 1
	// A reader limited to the size, as go-containerregistry's is, never
	// asks past it; the last byte's read must carry the error.
	v, _ := newVerifier(iotest.OneByteReader(bytes.NewReader(bad)), want, int64(len(bad)))
	_, err := io.Copy(io.Discard, io.LimitReader(v, int64(len(bad))))
	var de *digestError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a digestError on the read that completes the blob", err)
	}
}

func TestVerifyTransport_RedirectedBlob_Checked(t *testing.T) {
	content := []byte("blob served by a CDN")
	d, _, _ := v1.SHA256(bytes.NewReader(content))
	serve := content
	mux := http.NewServeMux()
	mux.HandleFunc("/v2/test/img/blobs/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/cdn/object", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/cdn/object", func(w http.ResponseWriter, r *http.Request) { w.Write(serve) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{Transport: verifyTransport{next: http.DefaultTransport}}

	get := func() error {
		resp, err := client.Get(srv.URL + "/v2/test/img/blobs/" + d.String())
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("intact blob: %v", err)
	}
	serve = []byte("blob served by a CDM")
	var de *digestError
	if err := get(); !errors.As(err, &de) {
		t.Fatalf("tampered blob after a redirect: %v, want a digestError", err)
	}
}

func TestAddressedDigest(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/v2/library/alpine/blobs/" + d, true},
		{"/v2/library/alpine/manifests/" + d, true},
		{"/v2/library/alpine/manifests/3.20", false},
		{"/v2/", false},
		{"/v2/library/alpine/tags/list", false},
		{"/other/blobs/" + d, false},
		{"/v2/x/blobs/sha256:short", false},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://registry.example"+tc.path, nil)
		h, ok := addressedDigest(req)
		if ok != tc.ok || (ok && h.String() != d) {
			t.Errorf("%s: got %v %v, want %v", tc.path, h, ok, tc.ok)
		}
	}
}
