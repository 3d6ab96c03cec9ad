package imds

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/imdsmend/imdsmend/internal/types"
)

// FuzzIMDSClassifyReply feeds arbitrary replies to the classifier: it must never panic,
// always give a class of imds.class, accept only what the checks accept, and never quote
// the body (a token) in its error.
func FuzzIMDSClassifyReply(f *testing.F) {
	f.Add(true, 200, "AQAEAtoken", "60", "", false)
	f.Add(false, 200, "i-0123456789abcdef0", "", "", false)
	f.Add(true, 403, "", "", "", false)
	f.Add(false, 503, "<html>busy</html>", "", "1.1 squid", false)
	f.Add(true, 200, "AQ\x00\xff", "60", "", false)
	f.Add(false, 200, "", "", "", true)
	f.Add(true, 407, "", "", "", false)
	f.Fuzz(func(t *testing.T, put bool, status int, body, ttl, via string, oversized bool) {
		method, check := http.MethodGet, imdsCheckInstanceID
		if put {
			method, check = http.MethodPut, imdsCheckToken
		}
		h := http.Header{}
		if ttl != "" {
			h.Set(imdsTTLHeader, ttl)
		}
		if via != "" {
			h.Set("Via", via)
		}
		class, err := imdsClassifyReply(method, status, h, []byte(body), oversized, check)
		if !slices.Contains(types.IMDSClasses(), class) {
			t.Fatalf("class %q is not one of types.IMDSClasses()", class)
		}
		if class == types.ClassOK {
			if err != nil || status < 200 || status > 299 || oversized || check([]byte(body)) != nil {
				t.Fatalf("accepted status %d body %q (oversized %v, err %v)", status, body, oversized, err)
			}
			return
		}
		if err == nil {
			t.Fatalf("class %s without an error", class)
		}
		// The same reply with a marked body must not show the mark.
		const mark = "Zq9xK"
		if _, err := imdsClassifyReply(method, status, h, []byte(mark+body), oversized, check); err != nil && strings.Contains(err.Error(), mark) {
			t.Fatalf("error %q quotes the body", err)
		}
	})
}

// FuzzIMDSReadBody checks that no body, however long, is read past the limit.
func FuzzIMDSReadBody(f *testing.F) {
	f.Add(10, int64(-1))
	f.Add(imdsMaxBody+1, int64(-1))
	f.Add(5, int64(imdsMaxBody+1))
	f.Fuzz(func(t *testing.T, n int, length int64) {
		if n < 0 || n > 4*imdsMaxBody {
			return
		}
		b, err := imdsReadBody(strings.NewReader(strings.Repeat("a", n)), length)
		switch {
		case length > imdsMaxBody || n > imdsMaxBody:
			if err == nil {
				t.Fatalf("read %d bytes (announced %d) without complaint", len(b), length)
			}
		case err != nil || len(b) != n:
			t.Fatalf("read %d of %d bytes: %v", len(b), n, err)
		}
	})
}
