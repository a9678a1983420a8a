package oci

import (
	"context"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options tune a Get or Pull. The zero value is what `vmm run` wants.
type Options struct {
	// Progress gets a one-line progress bar while blobs download, when it
	// is a terminal; otherwise nothing is written to it.
	Progress io.Writer
	// Keychain finds registry credentials. Nil means authn.DefaultKeychain:
	// ~/.docker/config.json ($DOCKER_CONFIG), then podman's auth.json.
	Keychain authn.Keychain
	// Platform picks the image out of a multi-platform index. Nil means
	// linux/amd64, what the VMM boots.
	Platform *v1.Platform
	// Transport carries registry requests. Nil means remote.DefaultTransport.
	Transport http.RoundTripper
	// Remote adds registry options, applied before this package's own;
	// set Transport rather than passing remote.WithTransport here.
	Remote []remote.Option
}

func (o Options) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	return v1.Platform{OS: "linux", Architecture: "amd64"}
}

func (o Options) remoteOptions(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	t := o.Transport
	if t == nil {
		t = remote.DefaultTransport
	}
	return append(append([]remote.Option(nil), o.Remote...),
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(kc),
		remote.WithPlatform(o.platform()),
		remote.WithTransport(verifyTransport{next: t}),
	)
}
