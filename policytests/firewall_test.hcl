# Tests of the firewall and route rules of the default policy (policy.hcl). Run them with
# `imdsmend test`. Facts are shaped as the firewall and route probes fill them.

test "the AWS article's owner-scoped REJECT is a deliberate restriction" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [{
      id = "nft/ipv4/filter/OUTPUT/1a2b3c4d", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 1, handle = 0,
      spec = "-d 169.254.169.254/32 -p tcp -m owner --uid-owner 1000-10000 -j REJECT --reject-with icmp-port-unreachable",
      effect = "reject", scope = "non_root", blocks = false, certain = true, deliberate = true, broad = false
    }] }
  }
  expect = ["firewall_restricts_imds"]
}

test "a REJECT for everyone blocks IMDS" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [{
      id = "nft/ipv4/filter/OUTPUT/5e6f7a8b", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 1, handle = 0,
      spec = "-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable",
      effect = "reject", scope = "everyone", blocks = true, certain = true, deliberate = false, broad = false
    }] }
  }
  expect = ["firewall_blocks_imds"]
}

test "a blocker next to a deliberate restriction: both are reported" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [
      { id = "a", backend = "nft", family = "ipv4", table = "filter", chain = "FORWARD", position = 1, handle = 0,
        spec = "-d 169.254.169.254/32 -i eni+ -j DROP", effect = "drop", scope = "forwarded",
        blocks = false, certain = true, deliberate = true, broad = false },
      { id = "b", backend = "legacy", family = "ipv4", table = "filter", chain = "OUTPUT", position = 1, handle = 0,
        spec = "-d 169.254.169.254/32 -j DROP", effect = "drop", scope = "everyone",
        blocks = true, certain = true, deliberate = false, broad = false },
    ] }
  }
  expect = ["firewall_blocks_imds", "firewall_restricts_imds"]
}

# The default deletion filter: of five rules, firewall_delete receives exactly the narrow
# blocker. Dropping any of r.blocks, !r.deliberate, !r.broad or the imdsmend:keep check
# from policy.hcl hands it one more, and this test fails.
test "firewall_delete gets the narrow blocker only" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [
      { id = "narrow", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 1,
        spec = "-d 169.254.169.254/32 -p tcp -j REJECT --reject-with icmp-port-unreachable", effect = "reject", scope = "everyone",
        blocks = true, certain = true, deliberate = false, broad = false },
      { id = "broad", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 2,
        spec = "-j DROP", effect = "drop", scope = "everyone",
        blocks = true, certain = true, deliberate = false, broad = true },
      { id = "owner", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 3,
        spec = "-d 169.254.169.254/32 -p tcp -m owner ! --uid-owner 1001 -j REJECT --reject-with icmp-port-unreachable", effect = "reject", scope = "everyone",
        blocks = true, certain = true, deliberate = true, broad = false },
      { id = "keep", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 4,
        spec = "-d 169.254.169.254/32 -m comment --comment \"imdsmend:keep (ticket 42)\" -j DROP", effect = "drop", scope = "everyone",
        blocks = true, certain = true, deliberate = false, broad = false },
      { id = "uncertain", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 5,
        spec = "-d 169.254.169.254/32 -m mark --mark 0x1 -j DROP", effect = "drop", scope = "everyone",
        blocks = false, certain = false, deliberate = false, broad = false },
    ] }
  }
  expect = ["firewall_blocks_imds", "firewall_restricts_imds"]
  remediate "firewall_blocks_imds" "firewall_delete" {
    rules = [{ id = "narrow" }]
  }
  remediate "firewall_blocks_imds" "firewall_allow" {
    rules = [{ id = "broad" }]
  }
}

# Issue 8's LOGDROP example as the firewall probe reports it: the shared chain's DROP is
# broad and stays; the jump only IMDS's traffic takes is deleted.
test "a shared chain: the jump goes, the DROP stays" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [
      { id = "jump", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 2,
        spec = "-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j LOGDROP", effect = "drop", scope = "everyone",
        blocks = true, certain = true, deliberate = false, broad = false, leads_to = "LOGDROP: -j DROP" },
      { id = "drop", backend = "nft", family = "ipv4", table = "filter", chain = "LOGDROP", position = 1,
        spec = "-j DROP", effect = "drop", scope = "everyone", blocks = true, certain = true, deliberate = false, broad = true },
    ] }
  }
  expect = ["firewall_blocks_imds"]
  remediate "firewall_blocks_imds" "firewall_delete" {
    rules = [{ id = "jump" }]
  }
  # The DROP stops nothing of IMDS's once the jump is gone: no ACCEPT before it.
  remediate "firewall_blocks_imds" "firewall_allow" {
    rules = []
  }
}

# A default-deny host: the OUTPUT policy is DROP and nothing allows IMDS. The policy is
# never deleted; firewall_allow gets it, and puts the narrowest ACCEPT before it.
test "default-deny outbound: firewall_allow opens IMDS" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [
      { id = "policy", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 0,
        spec = "-P OUTPUT DROP", effect = "drop", scope = "everyone", blocks = true, certain = true, deliberate = false, broad = true,
        source = { front_end = "netfilter-persistent", file = "/etc/iptables/rules.v4", line = 3 } },
    ] }
  }
  expect = ["firewall_blocks_imds"]
  remediate "firewall_blocks_imds" "firewall_delete" {
    rules = []
  }
  remediate "firewall_blocks_imds" "firewall_allow" {
    rules = [{ id = "policy", source = { file = "/etc/iptables/rules.v4" } }]
  }
}

# An owner-scoped blocker before a DROP policy stays and keeps root out; the ACCEPT goes
# before the policy only, after the deliberate rule.
test "default-deny behind a deliberate rule: the deliberate rule stays" {
  facts = {
    firewall = { sources = ["nft/ipv4"], rules = [
      { id = "owner", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 1,
        spec = "-d 169.254.169.254/32 -m owner ! --uid-owner 1001 -j REJECT --reject-with icmp-port-unreachable", effect = "reject", scope = "everyone",
        blocks = true, certain = true, deliberate = true, broad = false },
      { id = "policy", backend = "nft", family = "ipv4", table = "filter", chain = "OUTPUT", position = 0,
        spec = "-P OUTPUT DROP", effect = "drop", scope = "everyone", blocks = true, certain = true, deliberate = false, broad = true },
    ] }
  }
  expect = ["firewall_blocks_imds"]
  remediate "firewall_blocks_imds" "firewall_allow" {
    rules = [{ id = "policy" }]
  }
}

test "no rules, no firewall finding" {
  facts  = { firewall = { sources = [], rules = [] } }
  expect = []
}

test "a failed firewall probe decides neither firewall rule" {
  facts   = { firewall = null }
  expect  = []
  unknown = ["firewall_blocks_imds", "firewall_restricts_imds"]
}

test "a local route, as in a test namespace, is fine" {
  facts  = { route = { type = "local", interface = "lo", ok = true, managed_by = "", reason = "" } }
  expect = []
}

test "a prohibit route stops IMDS" {
  facts = { route = { type = "prohibit", prefix = "169.254.169.254/32", table = "main", primary_interface = "eth0", primary_gateway = "10.0.0.1",
    ok = false, managed_by = "", reason = "prohibit route 169.254.169.254/32 in table main" } }
  expect = ["no_route_to_imds"]
}

test "a route via a secondary ENI" {
  facts = { route = { type = "unicast", interface = "ens6", primary_interface = "ens5", primary_gateway = "10.0.0.1",
    ok = false, managed_by = "", reason = "IMDS traffic leaves by ens6, not by the primary interface ens5" } }
  expect = ["no_route_to_imds"]
}

test "systemd-imdsd's prohibit route is intentional" {
  facts = { route = { type = "prohibit", prefix = "169.254.169.254/32", table = "main", primary_interface = "eth0",
    ok = false, managed_by = "systemd-imdsd", reason = "prohibit route 169.254.169.254/32 in table main" } }
  expect = []
}
