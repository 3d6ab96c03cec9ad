package ec2

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// maxBody bounds a request body; the real service refuses far smaller ones than this.
const maxBody = 1 << 20

// request is one parsed Query API call.
type request struct {
	Action string
	Params url.Values
	// Region and AccessKey come from the SigV4 credential scope, as the real service
	// reads them; an unsigned request gets the default region and account.
	Region    string
	AccessKey string
	Service   string
}

// parseRequest reads the form of a Query API call (POST body or GET query) and its
// credential scope.
func parseRequest(r *http.Request) (*request, error) {
	var raw string
	switch r.Method {
	case http.MethodPost:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		if len(b) > maxBody {
			return nil, fmt.Errorf("body over %d bytes", maxBody)
		}
		raw = string(b)
	case http.MethodGet:
		raw = r.URL.RawQuery
	default:
		return nil, fmt.Errorf("method %s", r.Method)
	}
	params, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("form: %w", err)
	}
	req := &request{Action: params.Get("Action"), Params: params}
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		cred = credentialOf(auth)
	} else {
		cred = params.Get("X-Amz-Credential")
	}
	// AKID/DATE/REGION/SERVICE/aws4_request
	if parts := strings.Split(cred, "/"); len(parts) == 5 {
		req.AccessKey, req.Region, req.Service = parts[0], parts[2], parts[3]
	}
	return req, nil
}

// credentialOf finds Credential=… in a SigV4 Authorization header.
func credentialOf(auth string) string {
	_, rest, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ := strings.Cut(rest, ",")
	return strings.TrimSpace(cred)
}

// list reads a flattened list parameter (Name.1, Name.2, …) in index order.
func (q *request) list(name string) []string {
	type item struct {
		n int
		v string
	}
	var items []item
	for k, vs := range q.Params {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || len(vs) == 0 {
			continue
		}
		items = append(items, item{n, vs[0]})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].n < items[j].n })
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.v
	}
	return out
}

// filter is one Filter.N of a Describe call.
type filter struct {
	Name   string
	Values []string
}

// filters reads Filter.N.Name and Filter.N.Value.M.
func (q *request) filters() []filter {
	byN := map[int]*filter{}
	for k, vs := range q.Params {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok || len(vs) == 0 {
			continue
		}
		num, field, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			continue
		}
		f := byN[n]
		if f == nil {
			f = &filter{}
			byN[n] = f
		}
		switch {
		case field == "Name":
			f.Name = vs[0]
		case strings.HasPrefix(field, "Value."):
			f.Values = append(f.Values, vs[0])
		}
	}
	ns := make([]int, 0, len(byN))
	for n := range byN {
		ns = append(ns, n)
	}
	sort.Ints(ns)
	out := make([]filter, 0, len(ns))
	for _, n := range ns {
		f := byN[n]
		sort.Strings(f.Values)
		out = append(out, *f)
	}
	return out
}

// checkParams refuses parameters the action does not take, as the service does
// (UnknownParameter). Lists are named by their prefix (InstanceId for InstanceId.N).
func (q *request) checkParams(known ...string) *APIError {
	for k := range q.Params {
		base := k
		if i := strings.IndexByte(k, '.'); i >= 0 {
			base = k[:i]
		}
		if base == "Action" || base == "Version" || strings.HasPrefix(k, "X-Amz-") || containsString(known, base) {
			continue
		}
		return errUnknownParameter(k)
	}
	return nil
}

// boolParam reads a boolean parameter ("true"/"false"); absent is false.
func (q *request) boolParam(name string) (bool, *APIError) {
	v := q.Params.Get(name)
	switch strings.ToLower(v) {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errInvalidParameterValue("Invalid value '" + v + "' for " + name + ". Expected a boolean.")
}

// wildcard matches EC2 filter values: * any run, ? any one character.
func wildcard(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	p, t := []rune(pattern), []rune(s)
	// Iterative matching with backtracking to the last star.
	pi, ti, star, mark := 0, 0, -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
