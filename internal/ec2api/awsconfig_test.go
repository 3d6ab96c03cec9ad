package ec2api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// fakeSTS answers AssumeRole and AssumeRoleWithWebIdentity with the key AK<Action>, and
// records each call with the key that signed it.
type fakeSTS struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	action := r.Form.Get("Action")
	signer := "unsigned"
	if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		signer, _, _ = strings.Cut(cred, "/")
	}
	f.mu.Lock()
	f.calls = append(f.calls, action+" by "+signer)
	f.mu.Unlock()
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult><Credentials>`+
		`<AccessKeyId>AK%[1]s</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken>`+
		`<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></%[1]sResult></%[1]sResponse>`, action)
}

// containerToken is what the fake container endpoint wants in Authorization.
const containerToken = "container-auth"

func TestLoadAWSConfigCredentials(t *testing.T) {
	const sso = "sso_start_url = https://example.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = 111122223333\nsso_role_name = Admin\n"
	for _, tc := range []struct {
		name        string
		env         map[string]string
		config      string // the shared config file
		credentials string // the shared credentials file
		wantKey     string // the key Retrieve returns
		wantSource  string // the start of its Source
		wantCalls   string // the STS calls made, "; "-joined
		wantErr     string // LoadAWSConfig's error, else Retrieve's
	}{
		{name: "environment", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "s"},
			credentials: "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s\n",
			wantKey:     "AKENV", wantSource: "EnvConfigCredentials"},
		{name: "web identity", env: map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": "TOKEN", "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/r"},
			credentials: "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s\n",
			wantKey:     "AKAssumeRoleWithWebIdentity", wantCalls: "AssumeRoleWithWebIdentity by unsigned"},
		{name: "default profile, static keys", credentials: "[default]\naws_access_key_id = AKFILE\naws_secret_access_key = s\n",
			wantKey: "AKFILE", wantSource: "SharedConfigCredentials"},
		{name: "AWS_PROFILE, static keys in config", env: map[string]string{"AWS_PROFILE": "ops"},
			config:  "[profile ops]\naws_access_key_id = AKOPS\naws_secret_access_key = s\n",
			wantKey: "AKOPS", wantSource: "SharedConfigCredentials"},
		{name: "assume role from a source profile", env: map[string]string{"AWS_PROFILE": "ops"},
			config:      "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/r\nsource_profile = base\n",
			credentials: "[base]\naws_access_key_id = AKBASE\naws_secret_access_key = s\n",
			wantKey:     "AKAssumeRole", wantCalls: "AssumeRole by AKBASE"},
		{name: "profile web identity", config: "[default]\nrole_arn = arn:aws:iam::111122223333:role/r\nweb_identity_token_file = TOKEN\n",
			wantKey: "AKAssumeRoleWithWebIdentity", wantCalls: "AssumeRoleWithWebIdentity by unsigned"},
		{name: "credential process", config: "[default]\ncredential_process = echo '{\"Version\": 1, \"AccessKeyId\": \"AKPROC\", \"SecretAccessKey\": \"s\"}'\n",
			wantKey: "AKPROC"},
		{name: "container endpoint (ECS, EKS Pod Identity, CodeBuild)",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "CONTAINER/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN": containerToken},
			wantKey: "AKCONTAINER"},
		{name: "container endpoint, token from a file",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "CONTAINER/creds", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "CTRTOKEN"},
			wantKey: "AKCONTAINER"},
		{name: "container endpoint on another host over HTTP",
			env:     map[string]string{"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://192.0.2.1/creds"},
			wantErr: "only loopback and the ECS/EKS addresses"},
		{name: "SSO profile", env: map[string]string{"AWS_PROFILE": "sso"}, config: "[profile sso]\n" + sso,
			wantErr: "aws configure export-credentials --profile sso --format env"},
		{name: "SSO behind a source profile", env: map[string]string{"AWS_PROFILE": "ops"},
			config:  "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/r\nsource_profile = sso\n[profile sso]\n" + sso,
			wantErr: "AWS profile sso uses IAM Identity Center"},
		{name: "unknown AWS_PROFILE", env: map[string]string{"AWS_PROFILE": "nope"}, wantErr: "load AWS profile nope"},
		{name: "none", wantErr: errNoSource.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sts := &fakeSTS{}
			srv := httptest.NewServer(sts)
			t.Cleanup(srv.Close)
			token := filepath.Join(dir, "token")
			for name, text := range map[string]string{"config": tc.config, "credentials": tc.credentials, "token": "jwt"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(text, "TOKEN", token)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			container := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != containerToken {
					http.Error(w, "no token", http.StatusUnauthorized)
					return
				}
				fmt.Fprint(w, `{"AccessKeyId": "AKCONTAINER", "SecretAccessKey": "s", "Token": "t", "Expiration": "2099-01-01T00:00:00Z"}`)
			}))
			t.Cleanup(container.Close)
			ctrToken := filepath.Join(dir, "ctrtoken")
			if err := os.WriteFile(ctrToken, []byte(containerToken+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			isolate(t, map[string]string{"HOME": dir, "AWS_CONFIG_FILE": filepath.Join(dir, "config"),
				"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"), "AWS_ENDPOINT_URL_STS": srv.URL})
			for k, v := range tc.env {
				v = strings.NewReplacer("CONTAINER", container.URL, "CTRTOKEN", ctrToken, "TOKEN", token).Replace(v)
				t.Setenv(k, v)
			}
			cfg, err := LoadAWSConfig(context.Background(), AWSOptions{Region: "eu-west-1", NoIMDS: true})
			if err == nil {
				var cr aws.Credentials
				cr, err = cfg.Credentials.Retrieve(context.Background())
				if err == nil && (cr.AccessKeyID != tc.wantKey || !strings.HasPrefix(cr.Source, tc.wantSource)) {
					t.Errorf("credentials %s from %q, want %s from %s…", cr.AccessKeyID, cr.Source, tc.wantKey, tc.wantSource)
				}
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if got := strings.Join(sts.calls, "; "); got != tc.wantCalls {
				t.Errorf("STS calls %q, want %q", got, tc.wantCalls)
			}
		})
	}
}

// TestNoSourceIsNoCredentials: with no source and IMDS left out, the client's calls fail
// with no_credentials and its plain message, as before.
func TestNoSourceIsNoCredentials(t *testing.T) {
	dir := t.TempDir()
	isolate(t, map[string]string{"HOME": dir, "AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials")})
	c, err := New(context.Background(), Config{Region: "eu-west-1", NoIMDS: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Credentials(context.Background()); KindOf(err) != KindNoCredentials || !strings.Contains(err.Error(), "IMDS is not used") {
		t.Errorf("Credentials without a source: %v, want %s", err, KindNoCredentials)
	}
}

// isolate clears the AWS variables of this machine's environment, points IMDS at a closed
// loopback port, and sets env.
func isolate(t *testing.T, env map[string]string) {
	t.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_EC2", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
	for k, v := range env {
		t.Setenv(k, v)
	}
}
