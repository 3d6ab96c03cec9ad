package redact

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestString(t *testing.T) {
	const awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	const imdsToken = "AQAEAFo3b8ZQ8NdIIKFUMN0bX6mEmLaaYaT9BLMlsm5-v0Wlc8kBQg=="
	const aemmToken = "q0Vt6X8+3cfhQn1Hb7yZk2Jw4sPDiuEARmLFgNxoT9U="
	tests := []struct {
		name, in, want string
	}{
		{"proxy URL password", "HTTP_PROXY=http://alice:s3cr3t@proxy.corp:3128", "HTTP_PROXY=http://alice:REDACTED@proxy.corp:3128"},
		{"proxy URL without password kept", "https_proxy=http://proxy.corp:3128/", "https_proxy=http://proxy.corp:3128/"},
		{"user only kept", "http://alice@proxy.corp:3128", "http://alice@proxy.corp:3128"},
		{"password with / and @", `{"proxy":"http://alice:s3/cr@t@proxy.corp:3128","x":"a@b"}`, `{"proxy":"http://alice:REDACTED@proxy.corp:3128","x":"a@b"}`},
		{"token header", "X-aws-ec2-metadata-token: abc123", "X-aws-ec2-metadata-token: REDACTED"},
		{"ttl header kept", "X-aws-ec2-metadata-token-ttl-seconds: 21600", "X-aws-ec2-metadata-token-ttl-seconds: 21600"},
		{"credentials JSON", `{"AccessKeyId" : "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey" : "` + awsSecret + `", "Token" : "short"}`,
			`{"AccessKeyId" : "REDACTED", "SecretAccessKey" : "REDACTED", "Token" : "REDACTED"}`},
		{"bare secret key", "found " + awsSecret + " in env", "found REDACTED in env"},
		{"bare IMDS token", "GET failed with token " + imdsToken, "GET failed with token REDACTED"},
		{"base64 token", "t=" + aemmToken + ";", "t=REDACTED;"},
		{"authorization bearer", "Authorization: Bearer eyJhbGciOi", "Authorization: REDACTED"},
		{"password pair", "password=hunter22 user=bob", "password=REDACTED user=bob"},
		{"token_status kept", `{"token_status":401,"class":"http_401"}`, `{"token_status":401,"class":"http_401"}`},
		{"HttpTokens kept", "HttpTokens=required", "HttpTokens=required"},
		{"iptables rule kept", "-A OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable",
			"-A OUTPUT -d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable"},
		{"path kept", "/usr/lib/x86_64-linux-gnu/libFoo.so.1 /etc/systemd/system/docker.service.d/http-proxy.conf",
			"/usr/lib/x86_64-linux-gnu/libFoo.so.1 /etc/systemd/system/docker.service.d/http-proxy.conf"},
		{"hex digest kept", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
		{"action ID kept", "firewall_delete-0a1b2c3d4e run 5f1c2a9b8e7d6c4b", "firewall_delete-0a1b2c3d4e run 5f1c2a9b8e7d6c4b"},
		{"drop-in path kept", "/etc/systemd/system/containerd.service.d/50-proxy-override.conf", "/etc/systemd/system/containerd.service.d/50-proxy-override.conf"},
		// The price of never missing a token: long Title_Case names look random enough.
		{"Title_Case name masked", "/etc/imdsmend/policy.d/10-Allow_Firewall_For_Build_Hosts.hcl", "/etc/imdsmend/policy.REDACTED.hcl"},
		// Keys that name a secret, whatever surrounds the secret word (issue 17).
		{"systemd drop-in", `Environment="HTTP_PROXY=http://proxy.corp:3128" "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG" "proxy_password=hunter22"`,
			`Environment="HTTP_PROXY=http://proxy.corp:3128" "AWS_SECRET_ACCESS_KEY=REDACTED" "proxy_password=REDACTED"`},
		{"environment file with blanks", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\nAWS_SESSION_TOKEN=IQoJb3JpZ2luX2Vj\n",
			"aws_secret_access_key = REDACTED\nAWS_SESSION_TOKEN=REDACTED\n"},
		{"quoted value with blanks", `export PROXY_PASS='two words' DB_PASSWD="a \"b\" c"`, `export PROXY_PASS='REDACTED' DB_PASSWD="REDACTED"`},
		{"access key ID beside a secret", "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE aws_secret_access_key=abc", "AWS_ACCESS_KEY_ID=REDACTED aws_secret_access_key=REDACTED"},
		{"camel case and private key", `{"AWSSecretKey":"abc","ssh_private_key":"def","clientPrivateKey": "ghi"}`, `{"AWSSecretKey":"REDACTED","ssh_private_key":"REDACTED","clientPrivateKey": "REDACTED"}`},
		{"diff line", "-Environment=\"proxy_password=hunter22\"\n+Environment=\"proxy_password=hunter22\" \"NO_PROXY=169.254.169.254\"",
			"-Environment=\"proxy_password=REDACTED\"\n+Environment=\"proxy_password=REDACTED\" \"NO_PROXY=169.254.169.254\""},
		{"token ttl kept", "X-aws-ec2-metadata-token-ttl-seconds=21600", "X-aws-ec2-metadata-token-ttl-seconds=21600"},
		{"session in prose kept", "new login sessions pick this up", "new login sessions pick this up"},
		{"long identifier kept", "imds_endpoint_disabled_because_of_policy_reasons", "imds_endpoint_disabled_because_of_policy_reasons"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := String(tt.in); got != tt.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRandomTokensAreMasked(t *testing.T) {
	// Tokens shaped like the simulator's, AEMM's and real IMDS's, from a fixed seed so the
	// corpus is the same every run: a miss is a leak.
	rng := rand.NewChaCha8([32]byte{'i', 'm', 'd', 's'})
	for i := range 10000 {
		var b [32]byte
		_, _ = rng.Read(b[:])
		for _, tok := range []string{"AQAEA" + base64.RawURLEncoding.EncodeToString(b[:]), base64.StdEncoding.EncodeToString(b[:])} {
			if got := String("token " + tok + " end"); got != "token REDACTED end" {
				t.Fatalf("sample %d: %q not masked: %q", i, tok, got)
			}
		}
	}
}

func FuzzString(f *testing.F) {
	f.Add("http://u:p@h/")
	f.Add("Token=abc")
	f.Fuzz(func(t *testing.T, s string) {
		out := String(s)
		// What was redacted holds no secret the redactor recognises: a second pass is a no-op.
		if again := String(out); again != out {
			t.Errorf("not idempotent: %q -> %q -> %q", s, out, again)
		}
	})
}

// BenchmarkString measures one journal field's worth of redaction: every field of every
// entry goes through it.
func BenchmarkString(b *testing.B) {
	const field = `{"class":"connection_refused","rule":"nft/ipv4/filter/OUTPUT: -d 169.254.169.254/32 -p tcp -j REJECT","proxy":"http://alice:s3cr3t@proxy.corp:3128","token":"AQAEAFo3b8ZQ8NdIIKFUMN0bX6mEmLaaYaT9BLMlsm5-v0Wlc8kBQg=="}`
	b.SetBytes(int64(len(field)))
	for b.Loop() {
		String(field)
	}
}
