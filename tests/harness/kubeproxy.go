package harness

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// KubeProxy sizes a generated kube-proxy ruleset (issue 16): Services ClusterIP services
// of Endpoints pods each. The iptables layout has Services*(2+3*Endpoints) nat rules
// (KUBE-SERVICES → KUBE-SVC-* → KUBE-SEP-*) and, in filter, a REJECT for a tenth as many
// services again that have no endpoints, as kube-proxy writes them.
type KubeProxy struct {
	Services, Endpoints int
}

// serviceIP is service i's ClusterIP in 10.100.0.0/16; 10.100.0.1 is the API server's.
func serviceIP(i int) string { return fmt.Sprintf("10.100.%d.%d", (i+1)/256, (i+1)%256) }

// podIP is endpoint e of service i, in 10.244.0.0/16 (several services share pods).
func (k KubeProxy) podIP(i, e int) string {
	n := (i*k.Endpoints + e) % 65000
	return fmt.Sprintf("10.244.%d.%d", n/250, n%250+2)
}

// chainHash is kube-proxy's chain-name suffix: 16 base32 characters of a hash of what the
// chain stands for.
func chainHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

// Iptables is the ruleset as iptables-save prints it on a kube-proxy node in iptables
// mode, for iptables-restore.
func (k KubeProxy) Iptables() string {
	var s strings.Builder
	s.WriteString(kubeFilterHead)
	for i := k.Services; i < k.Services*11/10; i++ {
		fmt.Fprintf(&s, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"ns%d/idle%d:http has no endpoints\" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\n", serviceIP(i), i%50, i)
	}
	s.WriteString("COMMIT\n")
	var chains, rules, svcRules strings.Builder
	for i := range k.Services {
		name := fmt.Sprintf("ns%d/svc%d:http", i%50, i)
		svc := "KUBE-SVC-" + chainHash(name)
		fmt.Fprintf(&chains, ":%s - [0:0]\n", svc)
		fmt.Fprintf(&svcRules, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j %s\n", serviceIP(i), name, svc)
		fmt.Fprintf(&rules, "-A %s ! -s 10.244.0.0/16 -d %s/32 -p tcp -m comment --comment \"%s cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n", svc, serviceIP(i), name)
		for e := range k.Endpoints {
			pod := k.podIP(i, e)
			sep := "KUBE-SEP-" + chainHash(name+pod)
			fmt.Fprintf(&chains, ":%s - [0:0]\n", sep)
			stat := ""
			if left := k.Endpoints - e; left > 1 {
				stat = fmt.Sprintf(" -m statistic --mode random --probability %.11f", 1/float64(left))
			}
			fmt.Fprintf(&rules, "-A %s -m comment --comment \"%s -> %s:8080\"%s -j %s\n", svc, name, pod, stat, sep)
			fmt.Fprintf(&rules, "-A %s -s %s/32 -m comment --comment \"%s\" -j KUBE-MARK-MASQ\n", sep, pod, name)
			fmt.Fprintf(&rules, "-A %s -p tcp -m comment --comment \"%s\" -m tcp -j DNAT --to-destination %s:8080\n", sep, name, pod)
		}
	}
	s.WriteString(kubeNatHead)
	s.WriteString(chains.String())
	s.WriteString(kubeNatBase)
	s.WriteString(svcRules.String())
	s.WriteString("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n")
	s.WriteString(rules.String())
	s.WriteString("COMMIT\n")
	return s.String()
}

// kubeFilterHead is kube-proxy's filter table up to the per-service REJECTs.
const kubeFilterHead = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FIREWALL - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -j KUBE-FIREWALL
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment "block incoming localnet connections" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
`

// kubeNatHead opens kube-proxy's nat table; the per-service chains follow.
const kubeNatHead = `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:KUBE-KUBELET-CANARY - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
:KUBE-SERVICES - [0:0]
`

// kubeNatBase is the nat table's fixed rules.
const kubeNatBase = `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
`

// Nft is the ruleset of kube-proxy's nftables mode (table ip kube-proxy), for nft -f:
// services are elements of the service-ips verdict map and the cluster-ips set.
func (k KubeProxy) Nft() string {
	var s, chains, ips, vmap strings.Builder
	for i := range k.Services {
		name := fmt.Sprintf("ns%d/svc%d/tcp/http", i%50, i)
		svc := "service-" + chainHash(name)[:8] + "-" + name
		sep := ", "
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&ips, "%s%s", sep, serviceIP(i))
		fmt.Fprintf(&vmap, "%s%s . tcp . 80 : goto %s", sep, serviceIP(i), svc)
		fmt.Fprintf(&chains, " chain %s {\n  ip daddr %s tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade\n", svc, serviceIP(i))
		var eps, epChains strings.Builder
		for e := range k.Endpoints {
			pod := k.podIP(i, e)
			ep := "endpoint-" + chainHash(name + pod)[:8] + "-" + name + "__" + pod + "/8080"
			if e > 0 {
				eps.WriteString(", ")
			}
			fmt.Fprintf(&eps, "%d : goto %s", e, ep)
			fmt.Fprintf(&epChains, " chain %s {\n  ip saddr %s jump mark-for-masquerade\n  meta l4proto tcp dnat to %s:8080\n }\n", ep, pod, pod)
		}
		fmt.Fprintf(&chains, "  numgen random mod %d vmap { %s }\n }\n%s", k.Endpoints, eps.String(), epChains.String())
	}
	fmt.Fprintf(&s, kubeNftHead, ips.String(), vmap.String())
	s.WriteString(chains.String())
	s.WriteString("}\n")
	return s.String()
}

// kubeNftHead is kube-proxy's nftables table without the per-service chains: %s are the
// cluster-ips elements and the service-ips map's.
const kubeNftHead = `table ip kube-proxy {
 comment "rules for kube-proxy"
 set cluster-ips { type ipv4_addr; comment "Active ClusterIPs"; elements = { %s } }
 set nodeport-ips { type ipv4_addr; comment "IPs that accept NodePort traffic"; }
 map no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to services with no endpoints"; }
 map service-ips { type ipv4_addr . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; elements = { %s } }
 map service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort traffic"; }
 chain filter-input { type filter hook input priority -110; policy accept;
  ct state new jump service-endpoints-check
 }
 chain filter-forward { type filter hook forward priority -110; policy accept;
  ct state new jump service-endpoints-check
  ct state new jump cluster-ips-check
 }
 chain filter-output { type filter hook output priority -110; policy accept;
  ct state new jump service-endpoints-check
 }
 chain filter-output-post-dnat { type filter hook output priority -90; policy accept;
  ct state new jump cluster-ips-check
 }
 chain nat-prerouting { type nat hook prerouting priority -100; policy accept;
  jump services
 }
 chain nat-output { type nat hook output priority -100; policy accept;
  jump services
 }
 chain nat-postrouting { type nat hook postrouting priority 100; policy accept;
  jump masquerading
 }
 chain services {
  ip daddr . meta l4proto . th dport vmap @service-ips
  ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
 }
 chain service-endpoints-check {
  ip daddr . meta l4proto . th dport vmap @no-endpoint-services
 }
 chain cluster-ips-check {
  ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
  ip daddr 10.100.0.0/16 drop comment "Drop traffic to unallocated ClusterIPs"
 }
 chain mark-for-masquerade {
  meta mark set meta mark or 0x4000
 }
 chain masquerading {
  meta mark & 0x4000 == 0 return
  meta mark set meta mark xor 0x4000
  masquerade fully-random
 }
`

// Load restores the layout into the namespace: "iptables" with iptables-restore (the
// nf_tables backend), "nft" with nft -f.
func (k KubeProxy) Load(ctx context.Context, ns *Namespace, mode string) error {
	tool, args, rules := "iptables-restore", []string(nil), ""
	switch mode {
	case "iptables":
		rules = k.Iptables()
	case "nft":
		tool, args, rules = "nft", []string{"-f", "-"}, k.Nft()
	default:
		return fmt.Errorf("kube-proxy mode %q: want iptables or nft", mode)
	}
	cmd := ns.Command(ctx, tool, args...)
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("load kube-proxy %s layout of %d services: %s: %w\n%s", mode, k.Services, tool, err, out)
	}
	return nil
}
