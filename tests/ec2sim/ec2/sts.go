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

type assumeRoleResponse struct {
	XMLName          xml.Name            `xml:"AssumeRoleResponse"`
	Xmlns            string              `xml:"xmlns,attr"`
	AssumedRoleUser  stsAssumedRoleUser  `xml:"AssumeRoleResult>AssumedRoleUser"`
	Credentials      stsCredentials      `xml:"AssumeRoleResult>Credentials"`
	PackedPolicySize int                 `xml:"AssumeRoleResult>PackedPolicySize"`
	Metadata         stsResponseMetadata `xml:"ResponseMetadata"`
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

// serveSTS answers the STS calls a fleet client makes: AssumeRole and GetCallerIdentity.
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
	case "AssumeRole":
		role := req.Params.Get("RoleArn")
		session := req.Params.Get("RoleSessionName")
		if role == "" || session == "" {
			missing := "roleArn"
			if role != "" {
				missing = "roleSessionName"
			}
			stsErr(http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at '"+missing+"' failed to satisfy constraint: Member must not be null")
			return
		}
		s.mu.Lock()
		ok := s.roles[role]
		s.mu.Unlock()
		roleAccount, roleName := parseRoleARN(role)
		if !ok || roleAccount == "" {
			stsErr(http.StatusForbidden, "AccessDenied", "User: "+arn+" is not authorized to perform: sts:AssumeRole on resource: "+role)
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
		writeXML(w, http.StatusOK, assumeRoleResponse{
			Xmlns:           stsNamespace,
			AssumedRoleUser: stsAssumedRoleUser{Arn: c.ARN, AssumedRoleID: "AROA" + randomKey(17) + ":" + session},
			Credentials:     stsCredentials{c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.Format(time.RFC3339)},
			Metadata:        stsResponseMetadata{rid},
		}, false)
	default:
		stsErr(http.StatusBadRequest, "InvalidAction", "Could not find operation "+req.Action+" for version "+stsVersion)
	}
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
