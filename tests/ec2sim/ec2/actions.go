package ec2

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ServeHTTP answers one Query API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := requestID()
	req, err := parseRequest(r)
	if err != nil {
		s.writeError(w, rid, &APIError{http.StatusBadRequest, "MalformedQueryString", err.Error()})
		return
	}
	if req.Service == "sts" || req.Params.Get("Version") == stsVersion {
		s.serveSTS(w, rid, req)
		return
	}
	s.count(req.Action)
	if req.Region == "" {
		req.Region = DefaultRegion
	}
	if !knownRegion(req.Region) {
		s.writeError(w, rid, &APIError{http.StatusUnauthorized, "AuthFailure", "AWS was not able to validate the provided access credentials"})
		return
	}
	account, arn := s.principal(req.AccessKey)
	fault := s.faultFor(req.Action, req.Region)
	switch fault {
	case FaultReset:
		// An answer that never comes: the client sees the connection close.
		panic(http.ErrAbortHandler)
	case FaultSlow:
		delay := s.Config().Delay
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		case <-s.servers.Closing():
			panic(http.ErrAbortHandler)
		}
	case FaultUnauthorized:
		s.writeError(w, rid, errUnauthorized(arn, req))
		return
	case FaultThrottled:
		s.writeError(w, rid, errThrottled())
		return
	}
	if !s.admit(account, req.Region, req) {
		s.writeError(w, rid, errThrottled())
		return
	}
	var resp any
	var apiErr *APIError
	switch req.Action {
	case "DescribeInstances":
		resp, apiErr = s.describeInstances(req, account)
	case "ModifyInstanceMetadataOptions":
		resp, apiErr = s.modifyOptions(req, account, fault)
	case "GetInstanceMetadataDefaults":
		resp, apiErr = s.getDefaults(req, account, fault)
	case "DescribeRegions":
		resp, apiErr = s.describeRegions(req)
	case "DescribeImages":
		resp, apiErr = s.describeImages(req)
	case "":
		apiErr = &APIError{http.StatusBadRequest, "MissingAction", "The request must contain the parameter Action"}
	default:
		apiErr = errInvalidAction(req.Action)
	}
	if apiErr != nil {
		s.writeError(w, rid, apiErr)
		return
	}
	setRequestID(resp, rid)
	writeXML(w, http.StatusOK, resp, fault == FaultMalformed)
}

func (s *Server) count(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Requests++
	s.stats.ByAction[action]++
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.ByAction, out.Errors = map[string]int64{}, map[string]int64{}
	for k, v := range s.stats.ByAction {
		out.ByAction[k] = v
	}
	for k, v := range s.stats.Errors {
		out.Errors[k] = v
	}
	return out
}

// ResetStats zeroes the counters.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats = newStats()
}

func (s *Server) writeError(w http.ResponseWriter, rid string, e *APIError) {
	s.mu.Lock()
	s.stats.Errors[e.Code]++
	if e.Code == "RequestLimitExceeded" {
		s.stats.Throttled++
	}
	s.mu.Unlock()
	writeXML(w, e.Status, xmlError{Code: e.Code, Message: e.Message, RequestID: rid}, false)
}

// writeXML writes a response document; truncate cuts it in half (the malformed fault).
func writeXML(w http.ResponseWriter, status int, v any, truncate bool) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		http.Error(w, fmt.Sprintf("encode response: %v", err), http.StatusInternalServerError)
		return
	}
	body := buf.Bytes()
	if truncate {
		body = body[:len(body)/2]
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Server", "AmazonEC2")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setRequestID fills the requestId (and namespace) of a response document.
func setRequestID(v any, rid string) {
	switch d := v.(type) {
	case *describeInstancesResponse:
		d.Xmlns, d.RequestID = Namespace, rid
	case *modifyInstanceMetadataOptionsResponse:
		d.Xmlns, d.RequestID = Namespace, rid
	case *getInstanceMetadataDefaultsResponse:
		d.Xmlns, d.RequestID = Namespace, rid
	case *describeRegionsResponse:
		d.Xmlns, d.RequestID = Namespace, rid
	case *describeImagesResponse:
		d.Xmlns, d.RequestID = Namespace, rid
	}
}

// errUnauthorized is the service's UnauthorizedOperation, with the encoded authorization
// failure message it gives for resource-level actions.
func errUnauthorized(arn string, req *request) *APIError {
	msg := "You are not authorized to perform this operation. User: " + arn + " is not authorized to perform: ec2:" + req.Action
	if id := req.Params.Get("InstanceId"); id != "" {
		msg += " on resource: arn:aws:ec2:" + req.Region + ":" + accountOfARN(arn) + ":instance/" + id
	}
	msg += " because no identity-based policy allows the ec2:" + req.Action + " action."
	if req.Action == "ModifyInstanceMetadataOptions" {
		detail := fmt.Sprintf(`{"allowed":false,"explicitDeny":false,"matchedStatements":{"items":[]},"context":{"principal":{"arn":%q},"action":"ec2:%s"}}`, arn, req.Action)
		msg += " Encoded authorization failure message: " + base64.RawURLEncoding.EncodeToString([]byte(detail))
	}
	return &APIError{http.StatusForbidden, "UnauthorizedOperation", msg}
}

func accountOfARN(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 5 {
		return DefaultAccount
	}
	return parts[4]
}

var describeInstancesFilters = map[string]bool{
	"instance-id": true, "instance-state-name": true, "instance-state-code": true, "image-id": true,
	"instance-type": true, "tag-key": true, "tag-value": true, "owner-id": true,
	"metadata-options.http-tokens": true, "metadata-options.http-put-response-hop-limit": true,
	"metadata-options.http-endpoint": true, "metadata-options.http-protocol-ipv6": true,
	"metadata-options.instance-metadata-tags": true,
}

func (s *Server) describeInstances(req *request, account string) (any, *APIError) {
	if e := req.checkParams("DryRun", "Filter", "InstanceId", "MaxResults", "NextToken", "IncludeManagedResources"); e != nil {
		return nil, e
	}
	dry, e := req.boolParam("DryRun")
	if e != nil {
		return nil, e
	}
	ids := req.list("InstanceId")
	for _, id := range ids {
		if !validInstanceID(id) {
			return nil, errMalformedID(id)
		}
	}
	filters := req.filters()
	for _, f := range filters {
		if f.Name == "" || (!describeInstancesFilters[f.Name] && !strings.HasPrefix(f.Name, "tag:")) {
			return nil, errInvalidParameterValue("The filter '" + f.Name + "' is invalid")
		}
	}
	pageSize := 0
	if v := req.Params.Get("MaxResults"); v != "" {
		if len(ids) > 0 {
			return nil, &APIError{http.StatusBadRequest, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults"}
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errInvalidParameterValue("Invalid value '" + v + "' for maxResults")
		}
		if n < 5 || n > 1000 {
			return nil, errMaxResults(n)
		}
		pageSize = n
	}
	offset := 0
	if tok := req.Params.Get("NextToken"); tok != "" {
		n, ok := parsePageToken(tok)
		if !ok {
			return nil, &APIError{http.StatusBadRequest, "InvalidPaginationToken", "The specified pagination token is not valid or is expired."}
		}
		offset = n
	}
	if dry {
		return nil, errDryRun()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var selected []*instance
	if len(ids) > 0 {
		var missing []string
		for _, id := range ids {
			rec, ok := s.instances[id]
			if !ok || rec.Account != account || rec.Region != req.Region {
				missing = append(missing, id)
				continue
			}
			selected = append(selected, rec)
		}
		if len(missing) > 0 {
			return nil, errNotFound(missing)
		}
	} else {
		for _, id := range s.order {
			rec := s.instances[id]
			if rec.Account == account && rec.Region == req.Region {
				selected = append(selected, rec)
			}
		}
	}
	matched := selected[:0:0]
	for _, rec := range selected {
		if matchesAll(rec, filters) {
			matched = append(matched, rec)
		}
	}
	resp := &describeInstancesResponse{}
	if offset > len(matched) {
		offset = len(matched)
	}
	page := matched[offset:]
	if pageSize > 0 && len(page) > pageSize {
		page = page[:pageSize]
		resp.NextToken = pageToken(offset + pageSize)
	}
	resp.ReservationSet.Items = make([]xmlReservation, 0, len(page))
	for _, rec := range page {
		s.settleLocked(rec, true)
		resp.ReservationSet.Items = append(resp.ReservationSet.Items, toXMLReservation(rec.Instance))
	}
	return resp, nil
}

func errNotFound(ids []string) *APIError {
	if len(ids) == 1 {
		return &APIError{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance ID '" + ids[0] + "' does not exist"}
	}
	return &APIError{http.StatusBadRequest, "InvalidInstanceID.NotFound", "The instance IDs '" + strings.Join(ids, ", ") + "' do not exist"}
}

// pageToken is an opaque NextToken for the page starting at offset.
func pageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("ec2sim-page:" + strconv.Itoa(offset)))
}

func parsePageToken(tok string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(string(b), "ec2sim-page:")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

func matchesAll(rec *instance, filters []filter) bool {
	for _, f := range filters {
		if !matches(rec, f) {
			return false
		}
	}
	return true
}

// matches is one filter: any of its values matches (OR); filters combine with AND.
func matches(rec *instance, f filter) bool {
	var fields []string
	o := rec.Options
	switch {
	case f.Name == "instance-id":
		fields = []string{rec.ID}
	case f.Name == "instance-state-name":
		fields = []string{rec.StateName}
	case f.Name == "instance-state-code":
		fields = []string{strconv.Itoa(InstanceStateCode[rec.StateName])}
	case f.Name == "image-id":
		fields = []string{rec.ImageID}
	case f.Name == "instance-type":
		fields = []string{rec.Type}
	case f.Name == "owner-id":
		fields = []string{rec.Account}
	case f.Name == "metadata-options.http-tokens":
		fields = []string{o.HTTPTokens}
	case f.Name == "metadata-options.http-put-response-hop-limit":
		fields = []string{strconv.Itoa(o.HopLimit)}
	case f.Name == "metadata-options.http-endpoint":
		fields = []string{o.HTTPEndpoint}
	case f.Name == "metadata-options.http-protocol-ipv6":
		fields = []string{o.HTTPProtocolIPv6}
	case f.Name == "metadata-options.instance-metadata-tags":
		fields = []string{o.InstanceMetadataTags}
	case f.Name == "tag-key":
		for _, t := range rec.Tags {
			fields = append(fields, t.Key)
		}
	case f.Name == "tag-value":
		for _, t := range rec.Tags {
			fields = append(fields, t.Value)
		}
	case strings.HasPrefix(f.Name, "tag:"):
		key := strings.TrimPrefix(f.Name, "tag:")
		for _, t := range rec.Tags {
			if t.Key == key {
				fields = append(fields, t.Value)
			}
		}
	}
	for _, v := range f.Values {
		for _, field := range fields {
			if wildcard(v, field) {
				return true
			}
		}
	}
	return false
}

func toXMLReservation(in Instance) xmlReservation {
	hex := strings.TrimPrefix(in.ID, "i-")
	x := xmlInstance{
		InstanceID:         in.ID,
		ImageID:            in.ImageID,
		InstanceState:      xmlInstanceState{Code: InstanceStateCode[in.StateName], Name: in.StateName},
		PrivateDNSName:     "ip-10-0-0-10." + dnsSuffix(in.Region),
		InstanceType:       in.Type,
		LaunchTime:         "2026-01-01T00:00:00.000Z",
		Placement:          xmlPlacement{AvailabilityZone: in.Region + "a", Tenancy: "default"},
		Monitoring:         xmlMonitoring{State: "disabled"},
		PrivateIPAddress:   "10.0.0.10",
		Architecture:       "x86_64",
		RootDeviceType:     "ebs",
		RootDeviceName:     "/dev/xvda",
		VirtualizationType: "hvm",
		Hypervisor:         "xen",
		MetadataOptions:    toXMLOptions(in.Options),
		PlatformDetails:    "Linux/UNIX",
	}
	if len(in.Tags) > 0 {
		x.TagSet = &xmlTagSet{}
		for _, t := range in.Tags {
			x.TagSet.Items = append(x.TagSet.Items, xmlTag(t))
		}
	}
	return xmlReservation{ReservationID: "r-" + hex, OwnerID: in.Account, InstancesSet: xmlInstancesSet{Items: []xmlInstance{x}}}
}

func dnsSuffix(region string) string {
	if region == "us-east-1" {
		return "ec2.internal"
	}
	return region + ".compute.internal"
}

// optionValues are the values ModifyInstanceMetadataOptions accepts for each enum.
var optionValues = map[string][]string{
	"HttpTokens":           {Optional, Required},
	"HttpEndpoint":         {Disabled, Enabled},
	"HttpProtocolIpv6":     {Disabled, Enabled},
	"InstanceMetadataTags": {Disabled, Enabled},
}

func (s *Server) modifyOptions(req *request, account string, fault Fault) (any, *APIError) {
	if e := req.checkParams("DryRun", "HttpEndpoint", "HttpProtocolIpv6", "HttpPutResponseHopLimit", "HttpTokens", "InstanceId", "InstanceMetadataTags"); e != nil {
		return nil, e
	}
	dry, e := req.boolParam("DryRun")
	if e != nil {
		return nil, e
	}
	id := req.Params.Get("InstanceId")
	if id == "" {
		return nil, errMissingParameter("InstanceId")
	}
	if !validInstanceID(id) {
		return nil, errMalformedID(id)
	}
	params := []string{"HttpTokens", "HttpEndpoint", "HttpProtocolIpv6", "InstanceMetadataTags"}
	for _, p := range params {
		if v := req.Params.Get(p); v != "" && !containsString(optionValues[p], v) {
			return nil, errBadEnum(p, v, optionValues[p]...)
		}
	}
	hop := 0
	if v := req.Params.Get("HttpPutResponseHopLimit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			return nil, errBadHopLimit(v)
		}
		hop = n
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.instances[id]
	if !ok || rec.Account != account || rec.Region != req.Region {
		return nil, errNotFound([]string{id})
	}
	if req.Params.Get("HttpTokens") == Optional {
		d := s.defaultsLocked(account, req.Region, fault)
		if d.HTTPTokensEnforced == Enabled {
			msg := "The requested configuration is not supported: IMDSv1 cannot be enabled because IMDSv2 is enforced (httpTokensEnforced) for this account in this Region."
			if d.ManagedExceptionMessage != "" {
				msg = d.ManagedExceptionMessage
			}
			return nil, &APIError{http.StatusBadRequest, "UnsupportedOperation", msg}
		}
	}
	if dry {
		return nil, errDryRun()
	}
	s.settleLocked(rec, false)
	next := rec.Options
	set := func(p string, dst *string) {
		if v := req.Params.Get(p); v != "" {
			*dst = v
		}
	}
	set("HttpTokens", &next.HTTPTokens)
	set("HttpEndpoint", &next.HTTPEndpoint)
	set("HttpProtocolIpv6", &next.HTTPProtocolIPv6)
	set("InstanceMetadataTags", &next.InstanceMetadataTags)
	if hop > 0 {
		next.HopLimit = hop
	}
	next.State = StatePend
	rec.Options, rec.modified, rec.describesLeft = next, s.now(), s.cfg.ApplyAfter
	s.stats.Modified++
	resp := &modifyInstanceMetadataOptionsResponse{InstanceID: id, InstanceMetadataOptions: toXMLOptions(next)}
	if s.cfg.ApplyAfter == 0 && s.cfg.ApplyDelay == 0 && fault != FaultNeverApplied {
		// Applied at once: the answer still says pending, as the service's always does.
		rec.Options.State = StateDone
		rec.applied = rec.Options
	}
	return resp, nil
}

// defaultsLocked is an account's IMDS defaults in a region, as the fault shapes them.
func (s *Server) defaultsLocked(account, region string, fault Fault) AccountDefaults {
	d := s.defaults[account+"/"+region]
	switch fault {
	case FaultUnsupported:
		d.HTTPTokensEnforced = Enabled
	case FaultDeclarative:
		d.HTTPTokens, d.HTTPTokensEnforced = Required, Enabled
		d.ManagedBy, d.ManagedExceptionMessage = "declarative-policy", DeclarativeMessage
	}
	if d.ManagedBy == "" {
		d.ManagedBy = "account"
	}
	return d
}

func (s *Server) getDefaults(req *request, account string, fault Fault) (any, *APIError) {
	if e := req.checkParams("DryRun"); e != nil {
		return nil, e
	}
	dry, e := req.boolParam("DryRun")
	if e != nil {
		return nil, e
	}
	if dry {
		return nil, errDryRun()
	}
	s.mu.Lock()
	d := s.defaultsLocked(account, req.Region, fault)
	s.mu.Unlock()
	return &getInstanceMetadataDefaultsResponse{AccountLevel: xmlAccountLevel{
		HTTPTokens: d.HTTPTokens, HopLimit: d.HopLimit, HTTPEndpoint: d.HTTPEndpoint,
		InstanceMetadataTags: d.InstanceMetadataTags, ManagedBy: d.ManagedBy,
		ManagedExceptionMessage: d.ManagedExceptionMessage, HTTPTokensEnforced: d.HTTPTokensEnforced,
	}}, nil
}

// knownRegions are the commercial regions a credential scope may name; the simulator's
// enabled regions (DescribeRegions) are a subset.
var knownRegions = []string{
	"af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
	"ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
	"ca-central-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3", "il-central-1", "me-central-1", "me-south-1",
	"sa-east-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
}

func knownRegion(r string) bool { return containsString(knownRegions, r) }

// Regions lists the enabled regions (those DescribeRegions returns).
func (s *Server) Regions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.regions...)
}

func (s *Server) describeRegions(req *request) (any, *APIError) {
	if e := req.checkParams("DryRun", "AllRegions", "Filter", "RegionName"); e != nil {
		return nil, e
	}
	dry, e := req.boolParam("DryRun")
	if e != nil {
		return nil, e
	}
	names := req.list("RegionName")
	for _, n := range names {
		if !knownRegion(n) {
			return nil, errInvalidParameterValue("Invalid region: " + n)
		}
	}
	if dry {
		return nil, errDryRun()
	}
	resp := &describeRegionsResponse{}
	for _, r := range s.Regions() {
		if len(names) > 0 && !containsString(names, r) {
			continue
		}
		resp.RegionInfo.Items = append(resp.RegionInfo.Items, xmlRegion{RegionName: r, Endpoint: "ec2." + r + ".amazonaws.com", OptInStatus: "opt-in-not-required"})
	}
	return resp, nil
}

func (s *Server) describeImages(req *request) (any, *APIError) {
	if e := req.checkParams("DryRun", "ExecutableBy", "Filter", "ImageId", "IncludeDeprecated", "IncludeDisabled", "MaxResults", "NextToken", "Owner"); e != nil {
		return nil, e
	}
	dry, e := req.boolParam("DryRun")
	if e != nil {
		return nil, e
	}
	ids := req.list("ImageId")
	for _, id := range ids {
		if !strings.HasPrefix(id, "ami-") {
			return nil, &APIError{http.StatusBadRequest, "InvalidAMIID.Malformed", `Invalid id: "` + id + `" (expecting "ami-...")`}
		}
	}
	if dry {
		return nil, errDryRun()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &describeImagesResponse{}
	var missing []string
	var keys []string
	if len(ids) > 0 {
		for _, id := range ids {
			if _, ok := s.images[req.Region+"/"+id]; !ok {
				missing = append(missing, id)
				continue
			}
			keys = append(keys, req.Region+"/"+id)
		}
	} else {
		for k := range s.images {
			if strings.HasPrefix(k, req.Region+"/") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
	}
	if len(missing) > 0 {
		return nil, &APIError{http.StatusBadRequest, "InvalidAMIID.NotFound", "The image id '[" + strings.Join(missing, ", ") + "]' does not exist"}
	}
	for _, k := range keys {
		img := s.images[k]
		resp.ImagesSet.Items = append(resp.ImagesSet.Items, xmlImage{
			ImageID: img.ID, ImageLocation: "amazon/" + img.Name, ImageState: "available", ImageOwnerID: "137112412989",
			IsPublic: true, Architecture: "x86_64", ImageType: "machine", Name: img.Name, RootDeviceType: "ebs",
			VirtualizationType: "hvm", Hypervisor: "xen", ImdsSupport: img.ImdsSupport,
		})
	}
	return resp, nil
}
