package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vmm-dev/vmm/vmm/container"
)

// prepare always answers with a reply vmm can read: a request it cannot
// parse, or an image reference that is wrong, is an Error in the reply and
// status 1.
func TestPrepare_ErrorsAreReplies(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for _, tc := range []struct{ in, want string }{
		{"{", "read the request"},
		{`{"Spec":{"Image":"x"},"Bogus":1}`, "unknown field"},
		{`{"Spec":{"Image":"UPPER/case"}}`, "UPPER/case"},
	} {
		var out, errb bytes.Buffer
		code := dispatch([]string{"prepare"}, strings.NewReader(tc.in), &out, &errb)
		var reply container.PrepareReply
		if err := json.Unmarshal(out.Bytes(), &reply); err != nil {
			t.Fatalf("%s: reply %q: %v", tc.in, out.String(), err)
		}
		if code != 1 || reply.Prepared != nil || !strings.Contains(reply.Error, tc.want) {
			t.Errorf("%s: status %d, reply %+v; want 1 and an error about %q", tc.in, code, reply, tc.want)
		}
	}
}
