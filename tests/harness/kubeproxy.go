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
// services again that have no endpoints, as kube-proxy writes them. IPv6 adds the
// nftables layout's ip6 table (a dual-stack node).
type KubeProxy struct {
	Services, Endpoints int
	IPv6                bool
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

// Nft is the ruleset of kube-proxy's nftables mode, for nft -f: table ip kube-proxy (and,
// with IPv6, table ip6 kube-proxy for the same services' IPv6 ClusterIPs) as kube-proxy
// 1.31 and later writes it (pkg/proxy/nftables/proxier.go): services are elements of
// the service-ips verdict map and the cluster-ips set, each with a service chain that
// picks an endpoint chain by numgen; a tenth as many services again have no endpoints
// and are elements of no-endpoint-services, which sends them to reject-chain.
func (k KubeProxy) Nft() string {
	out := k.nftTable("ip")
	if k.IPv6 {
		out += k.nftTable("ip6")
	}
	return out
}

func (k KubeProxy) nftTable(family string) string {
	ip, addrType, podNet, svcNet, nodeIP := serviceIP, "ipv4_addr", "10.244.0.0/16", "10.100.0.0/16", "10.0.0.10"
	pod := k.podIP
	if family == "ip6" {
		ip, addrType, podNet, svcNet, nodeIP = serviceIP6, "ipv6_addr", "fd00:244::/64", "fd00:100::/112", "fd00::10"
		pod = k.podIP6
	}
	var chains, ips, vmap, noEndpoints strings.Builder
	for i := range k.Services {
		name := fmt.Sprintf("ns%d/svc%d/tcp/http", i%50, i)
		svc := "service-" + chainHash(name)[:8] + "-" + name
		sep := ", "
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&ips, "%s%s", sep, ip(i))
		fmt.Fprintf(&vmap, "%s%s . tcp . 80 : goto %s", sep, ip(i), svc)
		fmt.Fprintf(&chains, " chain %s {\n  %s daddr %s tcp dport 80 %s saddr != %s jump mark-for-masquerade\n", svc, family, ip(i), family, podNet)
		var eps, epChains strings.Builder
		for e := range k.Endpoints {
			addr := pod(i, e)
			ep := "endpoint-" + chainHash(name + addr)[:8] + "-" + name + "__" + strings.ReplaceAll(addr, ":", ".") + "/8080"
			if e > 0 {
				eps.WriteString(", ")
			}
			fmt.Fprintf(&eps, "%d : goto %s", e, ep)
			target := addr + ":8080"
			if family == "ip6" {
				target = "[" + addr + "]:8080"
			}
			fmt.Fprintf(&epChains, " chain %s {\n  %s saddr %s jump mark-for-masquerade\n  meta l4proto tcp dnat to %s\n }\n", ep, family, addr, target)
		}
		fmt.Fprintf(&chains, "  numgen random mod %d vmap { %s }\n }\n%s", k.Endpoints, eps.String(), epChains.String())
	}
	for i := k.Services; i < k.Services*11/10; i++ {
		if noEndpoints.Len() > 0 {
			noEndpoints.WriteString(", ")
		}
		fmt.Fprintf(&noEndpoints, "%s . tcp . 80 comment \"ns%d/idle%d:http\" : goto reject-chain", ip(i), i%50, i)
		fmt.Fprintf(&ips, ", %s", ip(i))
	}
	r := strings.NewReplacer("FAMILY", family, "ADDRTYPE", addrType, "SVCNET", svcNet, "NODEIP", nodeIP)
	var s strings.Builder
	s.WriteString(r.Replace(kubeNftHead))
	if ips.Len() > 0 {
		fmt.Fprintf(&s, " set cluster-ips { type %s; comment \"Active ClusterIPs\"; elements = { %s } }\n", addrType, ips.String())
	}
	if vmap.Len() > 0 {
		fmt.Fprintf(&s, " map service-ips { type %s . inet_proto . inet_service : verdict; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\"; elements = { %s } }\n", addrType, vmap.String())
	}
	if noEndpoints.Len() > 0 {
		fmt.Fprintf(&s, " map no-endpoint-services { type %s . inet_proto . inet_service : verdict; comment \"vmap to drop or reject packets to services with no endpoints\"; elements = { %s } }\n", addrType, noEndpoints.String())
	}
	s.WriteString(chains.String())
	s.WriteString("}\n")
	return s.String()
}

// serviceIP6 is service i's IPv6 ClusterIP in fd00:100::/112.
func serviceIP6(i int) string { return fmt.Sprintf("fd00:100::%x", i+1) }

// podIP6 is endpoint e of service i, in fd00:244::/64.
func (k KubeProxy) podIP6(i, e int) string {
	return fmt.Sprintf("fd00:244::%x", (i*k.Endpoints+e)%65000+2)
}

// kubeNftHead is kube-proxy's nftables table without the per-service chains and the
// elements of its sets and maps (added to cluster-ips, service-ips, no-endpoint-services
// after it): FAMILY is ip or ip6, ADDRTYPE its address type, SVCNET the service CIDR,
// NODEIP the address NodePorts accept.
const kubeNftHead = `table FAMILY kube-proxy {
 comment "rules for kube-proxy"
 set cluster-ips { type ADDRTYPE; comment "Active ClusterIPs"; }
 set nodeport-ips { type ADDRTYPE; comment "IPs that accept NodePort traffic"; elements = { NODEIP } }
 map no-endpoint-services { type ADDRTYPE . inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to services with no endpoints"; }
 map no-endpoint-nodeports { type inet_proto . inet_service : verdict; comment "vmap to drop or reject packets to service nodeports with no endpoints"; }
 map firewall-ips { type ADDRTYPE . inet_proto . inet_service : verdict; comment "destinations that are subject to LoadBalancerSourceRanges"; }
 map service-ips { type ADDRTYPE . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic"; }
 map service-nodeports { type inet_proto . inet_service : verdict; comment "NodePort traffic"; }
 chain filter-prerouting { type filter hook prerouting priority dstnat - 10; policy accept;
  ct state new jump firewall-check
 }
 chain filter-input { type filter hook input priority -110; policy accept;
  ct state new jump nodeport-endpoints-check
  ct state new jump service-endpoints-check
 }
 chain filter-forward { type filter hook forward priority -110; policy accept;
  ct state new jump service-endpoints-check
  ct state new jump cluster-ips-check
 }
 chain filter-output { type filter hook output priority -110; policy accept;
  ct state new jump service-endpoints-check
  ct state new jump firewall-check
 }
 chain filter-output-post-dnat { type filter hook output priority -90; policy accept;
  ct state new jump cluster-ips-check
 }
 chain nat-prerouting { type nat hook prerouting priority dstnat; policy accept;
  jump services
 }
 chain nat-output { type nat hook output priority -100; policy accept;
  jump services
 }
 chain nat-postrouting { type nat hook postrouting priority srcnat; policy accept;
  jump masquerading
 }
 chain nodeport-endpoints-check {
  FAMILY daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
 }
 chain service-endpoints-check {
  FAMILY daddr . meta l4proto . th dport vmap @no-endpoint-services
 }
 chain firewall-check {
  FAMILY daddr . meta l4proto . th dport vmap @firewall-ips
 }
 chain services {
  FAMILY daddr . meta l4proto . th dport vmap @service-ips
  FAMILY daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports
 }
 chain masquerading {
  meta mark & 0x00004000 == 0x00000000 return
  meta mark set meta mark ^ 0x00004000
  masquerade fully-random
 }
 chain cluster-ips-check {
  FAMILY daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
  FAMILY daddr SVCNET drop comment "Drop traffic to unallocated ClusterIPs"
 }
 chain mark-for-masquerade {
  meta mark set meta mark | 0x00004000
 }
 chain reject-chain {
  comment "helper for @no-endpoint-services / @no-endpoint-nodeports"
  reject
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
