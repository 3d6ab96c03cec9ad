package ec2

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strings"
	"time"
)

// STS wire constants (Query protocol, API version 2011-06-15).
const (
	stsVersion   = "2011-06-15"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	// DefaultUserARN is who an unknown access key is.
	DefaultUserARN = "arn:aws:iam::" + DefaultAccount + ":user/imdsmend-test"
)

// Credentials are what an access key stands for: the account and principal the service
// sees behind it.
type Credentials struct {
	AccessKeyID     string    `json:"access_key_id"`
	SecretAccessKey string    `json:"-"`
	SessionToken    string    `json:"-"`
	Account         string    `json:"account"`
	ARN             string    `json:"arn"`
	Expiration      time.Time `json:"expiration,omitempty"`
}

// AddAccessKey makes requests signed with key belong to account (as an IAM user).
func (s *Server) AddAccessKey(key, account string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[key] = Credentials{AccessKeyID: key, Account: account, ARN: "arn:aws:iam::" + account + ":user/imdsmend-test"}
}

// AddRole lets AssumeRole hand out credentials for roleARN (arn:aws:iam::ACCOUNT:role/NAME);
// they belong to the role's account.
func (s *Server) AddRole(roleARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[roleARN] = true
}

// RoleARN is the role a generated fleet's account offers to AssumeRole.
func RoleARN(account string) string { return "arn:aws:iam::" + account + ":role/imdsmend-fleet" }

// principal is the account and ARN behind an access key; an unknown (or absent) key is
// a user of the default account, so any client with made-up static keys works.
func (s *Server) principal(key string) (account, arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.keys[key]; ok {
		return c.Account, c.ARN
	}
	return DefaultAccount, DefaultUserARN
}

type stsAssumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type stsResponseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// assumeResponse is AssumeRoleResponse or AssumeRoleWithWebIdentityResponse (XMLName says
// which, as does its result's).
type assumeResponse struct {
	XMLName  xml.Name
	Xmlns    string              `xml:"xmlns,attr"`
	Result   assumeResult        // AssumeRoleResult or AssumeRoleWithWebIdentityResult
	Metadata stsResponseMetadata `xml:"ResponseMetadata"`
}

type assumeResult struct {
	XMLName          xml.Name
	AssumedRoleUser  stsAssumedRoleUser `xml:"AssumedRoleUser"`
	Audience         string             `xml:"Audience,omitempty"`
	Credentials      stsCredentials     `xml:"Credentials"`
	PackedPolicySize int                `xml:"PackedPolicySize"`
	Provider         string             `xml:"Provider,omitempty"`
	Subject          string             `xml:"SubjectFromWebIdentityToken,omitempty"`
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name            `xml:"GetCallerIdentityResponse"`
	Xmlns    string              `xml:"xmlns,attr"`
	Arn      string              `xml:"GetCallerIdentityResult>Arn"`
	UserID   string              `xml:"GetCallerIdentityResult>UserId"`
	Account  string              `xml:"GetCallerIdentityResult>Account"`
	Metadata stsResponseMetadata `xml:"ResponseMetadata"`
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// STSSessionDuration is how long AssumeRole's credentials last when not asked otherwise.
const STSSessionDuration = time.Hour

// serveSTS answers the STS calls a fleet or credentials client makes: AssumeRole,
// AssumeRoleWithWebIdentity (any well-formed JWT is accepted) and GetCallerIdentity.
func (s *Server) serveSTS(w http.ResponseWriter, rid string, req *request) {
	s.count("sts:" + req.Action)
	// STS, unlike EC2, carries its request ID in a header too, where the SDK reads it.
	w.Header().Set("X-Amzn-Requestid", rid)
	stsErr := func(status int, code, msg string) {
		s.mu.Lock()
		s.stats.Errors[code]++
		s.mu.Unlock()
		writeXML(w, status, stsErrorResponse{Xmlns: stsNamespace, Type: "Sender", Code: code, Message: msg, RequestID: rid}, false)
	}
	account, arn := s.principal(req.AccessKey)
	switch req.Action {
	case "GetCallerIdentity":
		writeXML(w, http.StatusOK, getCallerIdentityResponse{Xmlns: stsNamespace, Arn: arn, UserID: "AIDA" + strings.Repeat("X", 17), Account: account, Metadata: stsResponseMetadata{rid}}, false)
	case "AssumeRole", "AssumeRoleWithWebIdentity":
		role := req.Params.Get("RoleArn")
		session := req.Params.Get("RoleSessionName")
		token := req.Params.Get("WebIdentityToken")
		web := req.Action == "AssumeRoleWithWebIdentity"
		if missing := firstMissing(map[string]string{"roleArn": role, "roleSessionName": session}, web, token); missing != "" {
			stsErr(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at '"+missing+"' failed to satisfy constraint: Member must not be null")
			return
		}
		if web && strings.Count(token, ".") != 2 {
			stsErr(http.StatusBadRequest, "InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
			return
		}
		s.mu.Lock()
		ok := s.roles[role]
		s.mu.Unlock()
		roleAccount, roleName := parseRoleARN(role)
		if !ok || roleAccount == "" {
			msg := "User: " + arn + " is not authorized to perform: sts:AssumeRole on resource: " + role
			if web {
				msg = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
			}
			stsErr(http.StatusForbidden, "AccessDenied", msg)
			return
		}
		c := Credentials{
			AccessKeyID:     "ASIA" + randomKey(16),
			SecretAccessKey: base64.RawStdEncoding.EncodeToString(randomBytes(30)),
			SessionToken:    "FwoGZXIvYXdzE" + base64.RawStdEncoding.EncodeToString(randomBytes(96)),
			Account:         roleAccount,
			ARN:             "arn:aws:sts::" + roleAccount + ":assumed-role/" + roleName + "/" + session,
		}
		s.mu.Lock()
		c.Expiration = s.now().Add(STSSessionDuration).UTC()
		s.keys[c.AccessKeyID] = c
		s.mu.Unlock()
		result := assumeResult{
			XMLName:         xml.Name{Local: req.Action + "Result"},
			AssumedRoleUser: stsAssumedRoleUser{Arn: c.ARN, AssumedRoleID: "AROA" + randomKey(17) + ":" + session},
			Credentials:     stsCredentials{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.Format(time.RFC3339)},
		}
		if web {
			result.Audience, result.Provider, result.Subject = "sts.amazonaws.com", "oidc.imdsmend.invalid", "system:serviceaccount:imdsmend:imdsmend"
		}
		writeXML(w, http.StatusOK, assumeResponse{XMLName: xml.Name{Local: req.Action + "Response"}, Xmlns: stsNamespace, Result: result, Metadata: stsResponseMetadata{rid}}, false)
	default:
		stsErr(http.StatusBadRequest, "InvalidAction", "Could not find operation "+req.Action+" for version "+stsVersion)
	}
}

// firstMissing names the first required AssumeRole parameter that is empty, in the
// service's order.
func firstMissing(params map[string]string, web bool, token string) string {
	for _, name := range []string{"roleArn", "roleSessionName"} {
		if params[name] == "" {
			return name
		}
	}
	if web && token == "" {
		return "webIdentityToken"
	}
	return ""
}

// parseRoleARN splits arn:aws:iam::ACCOUNT:role/NAME.
func parseRoleARN(arn string) (account, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || len(parts[4]) != 12 {
		return "", ""
	}
	name, ok := strings.CutPrefix(parts[5], "role/")
	if !ok || name == "" {
		return "", ""
	}
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	return parts[4], name
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// randomKey is n characters of an access key's alphabet (A–Z, 2–7).
func randomKey(n int) string {
	return base32.StdEncoding.EncodeToString(randomBytes(n))[:n]
}
