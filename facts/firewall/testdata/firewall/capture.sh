#!/bin/sh
# Captures the fixtures in this directory from real iptables and nft, each scenario in a
# throwaway network namespace (never the host's). Run as root from this directory:
#   sh capture.sh
set -eu
scenario() {
	name=$1
	shift
	ns=imdsmend-capture-$$
	ip netns add "$ns"
	trap 'ip netns del "$ns" 2>/dev/null' EXIT
	ip netns exec "$ns" sh -eu -c "$*"
	ip netns exec "$ns" iptables-nft-save 2>/dev/null | sed '/^# \(Generated\|Completed\)/s/ on .*//' >"$name.nft4.save"
	ip netns exec "$ns" ip6tables-nft-save 2>/dev/null | sed '/^# \(Generated\|Completed\)/s/ on .*//' >"$name.nft6.save"
	ip netns exec "$ns" iptables-legacy-save | sed '/^# \(Generated\|Completed\)/s/ on .*//' >"$name.legacy4.save"
	ip netns exec "$ns" ip6tables-legacy-save | sed '/^# \(Generated\|Completed\)/s/ on .*//' >"$name.legacy6.save"
	ip netns exec "$ns" nft -j list ruleset >"$name.nft.json"
	for f in "$name".*; do [ -s "$f" ] || rm -f "$f"; done
	ip netns del "$ns"
	trap - EXIT
}

# The AWS article's rule: owner UID match 1000-10000 REJECT.
scenario article '
iptables -A OUTPUT -p tcp -d 169.254.169.254 -m owner --uid-owner 1000-10000 -j REJECT'

# Blockers of several shapes, and rules that must not count.
scenario mixed '
iptables -N IMDSCHK
iptables -N UNUSED
iptables -A OUTPUT -p udp --dport 53 -j ACCEPT
iptables -A OUTPUT -m conntrack --ctstate INVALID -j DROP
iptables -A OUTPUT -d 10.0.0.0/8 -j REJECT
iptables -A OUTPUT -p tcp -d 169.254.169.254 -j IMDSCHK
iptables -A IMDSCHK -m comment --comment "block \"imds\" for now; see \$TICKET" -j DROP
iptables -A OUTPUT -p tcp -m multiport --dports 80,443 -m conntrack --ctstate NEW -d 169.254.0.0/16 -j REJECT --reject-with tcp-reset
iptables -A OUTPUT -o eth9 -d 169.254.169.254 -j DROP
iptables -A OUTPUT ! -d 169.254.169.254 -p tcp --dport 80 -j DROP
iptables -A OUTPUT -m mark --mark 0x1 -d 169.254.169.254 -j DROP
iptables -A FORWARD -i eni+ -d 169.254.169.254 -j DROP
iptables -A UNUSED -d 169.254.169.254 -j DROP'

# The GCP-style allow-root-then-reject pattern: only non-root users are refused.
scenario rootonly '
iptables -A OUTPUT -d 169.254.169.254 -p tcp -m owner --uid-owner 0 -j ACCEPT
iptables -A OUTPUT -d 169.254.169.254 -p tcp -j REJECT
iptables -A OUTPUT -d 169.254.169.254 -p tcp -m owner ! --uid-owner 0 -j REJECT'

# AWS: allow one user only; root is refused too.
scenario trustworthy '
iptables -A OUTPUT -p tcp -d 169.254.169.254 -m owner ! --uid-owner 1001 -j REJECT'

# A hardened chain: policy DROP, loopback and DNS allowed, nothing for IMDS.
scenario policy '
iptables -A OUTPUT -o lo -j ACCEPT
iptables -A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A OUTPUT -p udp --dport 53 -j ACCEPT
iptables -A OUTPUT -m limit --limit 5/min -j LOG --log-prefix "out drop: "
iptables -P OUTPUT DROP'

# A DNAT of IMDS to a dead port, and one that keeps it (no effect).
scenario dnat '
iptables -t nat -A OUTPUT -d 169.254.169.254 -p tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9
iptables -t nat -A OUTPUT -d 169.254.169.254 -p tcp --dport 80 -j DNAT --to-destination 169.254.169.254:80
iptables -t nat -A PREROUTING -i docker0 -d 169.254.169.254 -p tcp --dport 80 -j DNAT --to-destination 172.17.0.1:8181'

# IPv6 and legacy backends.
scenario families '
ip6tables -A OUTPUT -d fd00:ec2::254 -p tcp --dport 80 -j REJECT
iptables-legacy -A OUTPUT -d 169.254.169.254 -j DROP
ip6tables-legacy -A OUTPUT -d fd00:ec2::/64 -j DROP'

# Native nftables rules, and an iptables-nft table made incompatible by a native chain.
scenario native '
nft add table inet t
nft add chain inet t out "{ type filter hook output priority 0; policy accept; }"
nft add chain inet t imds
nft add rule inet t out ct state established,related accept
nft add rule inet t out ip daddr 169.254.169.254 tcp dport 80 reject
nft add rule inet t out meta skuid 1000-2000 ip daddr 169.254.0.0/16 counter drop
nft add rule inet t out ip6 daddr fd00:ec2::254 tcp dport { 80, 443 } reject with tcp reset
nft add rule inet t out oifname "eth*" meta l4proto tcp jump imds
nft add rule inet t imds ip daddr 169.254.169.254 drop
iptables -A OUTPUT -d 169.254.169.254 -j DROP
nft add chain ip filter native_extra
nft add rule ip filter OUTPUT ip daddr 169.254.169.254 tcp dport 80 counter reject'

# 1,000 rules that don't concern IMDS, for BenchmarkEvaluateFirewall.
scenario bench1000 '
{
	echo "*filter"
	echo ":OUTPUT ACCEPT [0:0]"
	echo ":EGRESS - [0:0]"
	echo "-A OUTPUT -j EGRESS"
	i=0
	while [ $i -lt 500 ]; do
		echo "-A OUTPUT -d 10.$((i / 250)).$((i % 250)).0/24 -p tcp -m tcp --dport $((1000 + i)) -j ACCEPT"
		echo "-A EGRESS -s 192.168.$((i / 250)).$((i % 250))/32 -m comment --comment \"host $i\" -j DROP"
		i=$((i + 1))
	done
	echo COMMIT
} | iptables-restore'
# Its nft JSON is large and read by nothing.
rm -f bench1000.nft.json

# A chain shared with other traffic (issue 8): the LOGDROP example, and the same in nft with
# a chain that INPUT also jumps to, beside a chain only IMDS's traffic reaches.
scenario shared '
iptables -N LOGDROP
iptables -A LOGDROP -j DROP
iptables -A INPUT -p tcp --dport 22 -j ACCEPT
iptables -A INPUT -j LOGDROP
iptables -A OUTPUT -d 10.9.9.9/32 -j LOGDROP
iptables -A OUTPUT -d 169.254.169.254/32 -p tcp --dport 80 -j LOGDROP
nft add table inet t
nft add chain inet t out "{ type filter hook output priority 0; policy accept; }"
nft add chain inet t in "{ type filter hook input priority 0; policy accept; }"
nft add chain inet t deny
nft add chain inet t imdsonly
nft add rule inet t deny counter drop
nft add rule inet t imdsonly reject
nft add rule inet t in tcp dport 22 accept
nft add rule inet t in jump deny
nft add rule inet t out ip daddr 169.254.169.254 tcp dport 80 jump deny
nft add rule inet t out ip daddr 169.254.169.254 goto imdsonly'

# Destinations that hold IMDS but far more (issue 8): wide ranges, prefixes and nft
# comparisons are broad; a comparison that misses IMDS stops nothing.
scenario wide '
iptables -A OUTPUT -m iprange --dst-range 1.0.0.0-254.255.255.255 -j REJECT
iptables -A OUTPUT -m iprange --dst-range 0.0.0.0-255.255.255.255 -j REJECT
iptables -A OUTPUT -m iprange --dst-range 169.254.169.250-169.254.169.255 -j REJECT
iptables -A OUTPUT -d 128.0.0.0/1 -j REJECT
iptables -A OUTPUT -d 0.0.0.0/0 -p tcp -j REJECT
nft add table ip w
nft add chain ip w out "{ type filter hook output priority 0; policy accept; }"
nft add rule ip w out ip daddr ">=" 169.254.169.254 reject
nft add rule ip w out ip daddr "<" 169.254.169.254 reject
nft add rule ip w out ip daddr ">" 169.254.169.253 reject
nft add rule ip w out ip daddr "<=" 169.254.169.254 reject
nft add rule ip w out ip daddr "!=" 10.0.0.1 reject
nft add rule ip w out ip daddr 0.0.0.0/0 reject
nft add rule ip w out ip daddr 0.0.0.0-255.255.255.255 reject
nft add rule ip w out ip daddr 169.254.0.0/16 reject'

# kube-proxy's nftables mode (issue 16), 3 services of 2 endpoints, dual stack (the
# layout of tests/harness/kubeproxy.go): healthy, then with a Service whose externalIPs
# holds 169.254.169.254 (service-ips sends IMDS's traffic to its pod).
scenario kubenft '
nft -f kubenft.nft'
scenario kubenft-imds '
nft -f kubenft.nft
nft -f kubenft-externalip.nft'
