#!/usr/bin/env bash
# Start-up cost side by side (docs/bench.md, "Start-up"), as root:
#   - a hello-world Go binary against `imdsmend version`;
#   - curl's IMDSv2 pair (token PUT, then a GET with it) against a healthy `imdsmend check`,
#     both in one network namespace where bin/imdssim serves 169.254.169.254;
#   - the size of imdsmend as shipped (-trimpath -ldflags "-s -w").
# The two commands of a pair run alternately (ab, ba, ab, …) from one shell inside the
# namespace, so load from other work on the machine falls on both alike; the figures are
# medians and the ratio is the median of each round's ratio.
#
# RUNS=300 rounds per pair; IMDSMEND=path times a given binary instead of building one (its
# size is then that file's); IMDSSIM=path is the simulator (default bin/imdssim, `make build`).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
GO=${GO:-go}
RUNS=${RUNS:-300}
IMDSSIM=${IMDSSIM:-$root/bin/imdssim}
[ "$(id -u)" = 0 ] || { echo "startup.sh: run as root (it makes a network namespace)" >&2; exit 1; }
[ -x "$IMDSSIM" ] || { echo "startup.sh: no simulator at $IMDSSIM (make build)" >&2; exit 1; }

tmp=$(mktemp -d)
ns=imdsmend-bench-$$
sim=
cleanup() {
	if [ -n "$sim" ]; then kill "$sim" 2>/dev/null || true; wait "$sim" 2>/dev/null || true; fi
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# Both Go binaries built alike, as shipped.
printf 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n' >"$tmp/hello.go"
(cd "$tmp" && GOFLAGS= "$GO" build -trimpath -ldflags "-s -w" -o hello hello.go)
imdsmend=${IMDSMEND:-$tmp/imdsmend}
[ -n "${IMDSMEND:-}" ] || (cd "$root" && CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$imdsmend" ./cmd/imdsmend)

# The e2e tests' policy: the built-in one, without the proxy rule, which would judge the
# environments of every process on this host (no namespace hides them).
mkdir -p "$tmp/policy.d"
cp "$root/policy.hcl" "$tmp/policy.hcl"
printf 'rule "proxy_leak" {\n  enabled = false\n}\n' >"$tmp/policy.d/10-no-host-proxies.hcl"

# The namespace, as tests/harness makes it; IMDS exists only inside it.
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" addr add 169.254.169.254/32 dev lo
ip -n "$ns" -6 addr add fd00:ec2::254/128 dev lo nodad
ip netns exec "$ns" "$IMDSSIM" --listen 169.254.169.254:80 --listen '[fd00:ec2::254]:80' \
	--admin "unix:$tmp/admin.sock" --fault ok >"$tmp/imdssim.log" 2>&1 &
sim=$!
# imdssim binds its IMDS listeners before the admin socket.
for _ in $(seq 500); do [ -S "$tmp/admin.sock" ] && break; sleep 0.01; done
[ -S "$tmp/admin.sock" ] || { echo "startup.sh: imdssim did not start:" >&2; cat "$tmp/imdssim.log" >&2; exit 1; }

# What the timed commands run with: nothing that would send a client past the namespace.
cat >"$tmp/cmds.sh" <<CMDS
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
unset AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_ENDPOINT_URL_EC2 AWS_ENDPOINT_URL NOTIFY_SOCKET JOURNAL_STREAM
export LC_ALL=C
err=$tmp/last.err
hello() { "$tmp/hello" >/dev/null 2>"\$err"; }
version() { "$imdsmend" version >/dev/null 2>"\$err"; }
curlpair() {
	local tok
	tok=\$(curl -sSf -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' http://169.254.169.254/latest/api/token 2>"\$err") &&
		curl -sSf -H "X-aws-ec2-metadata-token: \$tok" http://169.254.169.254/latest/meta-data/instance-id >/dev/null 2>"\$err"
}
check() { "$imdsmend" check --policy "$tmp/policy.hcl" --state-dir "$tmp/state" >/dev/null 2>"\$err"; }
# timed F: runs F; a failure stops the bench with what F printed.
timed() {
	"\$1" && return
	echo "startup.sh: \$1 failed in round \$i:" >&2
	cat "\$err" >&2
	exit 1
}
CMDS

# pair A B: RUNS rounds of A and B alternately inside the namespace, one "µs_A µs_B" line each
# (in a file, so that a failed run reports nothing but the failure).
pair() {
	ip netns exec "$ns" bash -c '
		source "$1"
		for ((i = 0; i < $2; i++)); do
			if ((i % 2)); then
				t0=${EPOCHREALTIME/./}; timed $4; t1=${EPOCHREALTIME/./}; timed $3; t2=${EPOCHREALTIME/./}
				echo $((t2 - t1)) $((t1 - t0))
			else
				t0=${EPOCHREALTIME/./}; timed $3; t1=${EPOCHREALTIME/./}; timed $4; t2=${EPOCHREALTIME/./}
				echo $((t1 - t0)) $((t2 - t1))
			fi
		done' pair "$tmp/cmds.sh" "$RUNS" "$1" "$2" >"$tmp/times"
}

# report NAME_A NAME_B: medians of pair's two columns and the median of B/A per round.
report() {
	awk -v a="$1" -v b="$2" '
		{ x[NR] = $1; y[NR] = $2; r[NR] = $2 / $1 }
		function median(v, n,   i, j, t) {
			for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j > 0 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
			return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		}
		END {
			n = NR; ma = median(x, n); mb = median(y, n); mr = median(r, n)
			printf "startup: %-28s median %7.2f ms\n", a, ma / 1000
			printf "startup: %-28s median %7.2f ms   %.2fx %s (median of %d interleaved rounds)\n", b, mb / 1000, mr, a, n
		}' "$tmp/times"
}

# A healthy check exits 0; anything else is not the case being measured.
ip netns exec "$ns" bash -c "source '$tmp/cmds.sh' && i=0 && timed check"

echo "startup: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $RUNS rounds per pair"
pair hello version
report "hello world" "imdsmend version"
pair curlpair check
report "curl PUT+GET pair" "imdsmend check"
echo "startup: imdsmend binary as shipped      $(stat -c %s "$imdsmend" | awk '{printf "%.1f MB (%d bytes)", $1 / 1e6, $1}')"
