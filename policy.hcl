# imdsmend default policy. Copy to /etc/imdsmend/policy.hcl to change it, or add drop-ins
# in /etc/imdsmend/policy.d/*.hcl. The language is described in docs/policy.md and the
# facts rules can use in docs/facts.md.

settings {
  mode          = "enforce"
  interval      = "5m"
  probe_timeout = "2s"
  ipv6          = false

  # Local fixes are allowed; changing the instance through the EC2 API is not.
  allow {
    firewall = true
    files    = true
    ec2_api  = false
    # Services keep a fixed proxy environment until they restart; imdsmend restarts
    # them only when this is true.
    restart_units = false
    # cloud_init_rerun reboots the instance to rerun cloud-init that missed its metadata.
    reboot = false
  }
}

rule "imds_endpoint_disabled" {
  # cloud-init reads a 403 on the token PUT as "HTTP endpoint is disabled"; with the EC2
  # API's facts (settings.allow.ec2_api) the instance's own HttpEndpoint says so too.
  when     = (facts.imds.stage == "token" && facts.imds.class == "http_403") || try(facts.ec2.metadata_options.http_endpoint == "disabled", false)
  severity = "critical"
  summary  = try(facts.ec2.metadata_options.http_endpoint == "disabled", false) ? "the instance's HttpEndpoint is disabled (EC2 API, ${try(facts.ec2.instance_id, "")}): IMDS refuses every request with 403" : "IMDS refuses the token request with 403: the instance's HttpEndpoint is disabled"
  hint     = "with settings { allow { ec2_api = true } } imdsmend apply enables it through the EC2 API (docs/ec2-api.md); by hand: aws ec2 modify-instance-metadata-options --instance-id ${try(facts.identity.instance_id != "" ? facts.identity.instance_id : "ID", "ID")} --http-endpoint enabled"
  evidence = {
    imds_class    = try(facts.imds.class, null)
    http_endpoint = try(facts.ec2.metadata_options.http_endpoint, null)
    instance_id   = try(facts.identity.instance_id, null)
  }

  remediate "metadata_options" {
    http_endpoint = "enabled"
  }
}

rule "imds_throttled" {
  # Two signs: IMDS answers 429 to a caller over its request rate, and the ENA driver
  # counts the packets to IMDS (and DNS, NTP) it dropped over the link-local allowance,
  # 1024 packets per second per ENI. The callers probe names who holds connections to IMDS.
  # Only reported: the fix is in the caller (docs/throttling.md); the opt-in
  # rate_limit_caller fixer caps one user's connection rate.
  when     = facts.imds.class == "http_429" || try(facts.nic.linklocal_allowance_exceeded_delta > 0, false)
  severity = "warning"
  summary  = "IMDS throttles this instance: ${join("; ", concat(facts.imds.class == "http_429" ? ["HTTP 429 after ${facts.imds.attempts} attempts"] : [], try(facts.nic.linklocal_allowance_exceeded_delta > 0, false) ? ["linklocal_allowance_exceeded rose by ${facts.nic.linklocal_allowance_exceeded_delta} in ${floor(facts.nic.window_seconds)} s"] : []))}${try(length(facts.callers.top) > 0, false) ? "; top callers: ${join(", ", [for i, c in facts.callers.top : "${c.command} (PID ${c.pid}${c.unit != "" ? ", ${c.unit}" : ""}, ${c.connections} connections)" if i < 3])}" : ""}"
  hint     = "make the callers cache what they read (credentials until shortly before they expire) and back off on 429; docs/throttling.md says what each ENA counter means"
  evidence = {
    imds_class                         = facts.imds.class
    linklocal_allowance_exceeded_delta = try(facts.nic.linklocal_allowance_exceeded_delta, null)
    window_seconds                     = try(facts.nic.window_seconds, null)
    top_callers                        = try(facts.callers.top, [])
  }
}

rule "imds_unreachable" {
  # Under systemd-imdsd (facts.imds.mediated_by) the probe takes the daemon's own path
  # (facts.imds.marked); when it may not, imds_mediated_unverified says so instead.
  when     = contains(["connection_refused", "timeout", "no_route", "proxy"], facts.imds.class) && (facts.imds.mediated_by == "" || facts.imds.marked)
  severity = "critical"
  summary  = "IMDS at ${facts.imds.endpoint} is unreachable${facts.imds.marked ? " along ${facts.imds.mediated_by}'s path (fwmark 0x7FFF0815)" : ""}: ${facts.imds.class}"
  hint     = facts.imds.marked ? "${facts.imds.mediated_by} owns the path to IMDS: check its route (ip route show table 0x7FFF0815), its firewall marks and systemctl status 'systemd-imdsd@*'" : "look for a firewall rule, route or proxy that stops traffic to ${facts.imds.endpoint} (imdsmend plan)"
}

rule "hop_limit_too_low" {
  # Measured from inside each container one veth hop behind this host (facts.containers):
  # IMDS sends its token answers with the IP TTL of the instance's HttpPutResponseHopLimit,
  # and at 1 the host's forwarding hop spends it, so a container's token PUT gets no answer
  # while its tokenless GET does (401, or 200 when tokens are optional). SDKs in the
  # containers then wait out every PUT and fail, or fall back to IMDSv1. With the EC2 API's
  # facts, a hop limit of 1 while containers run says the same before they fail. A warning,
  # not critical: the host is served, and on EKS a hop limit of 1 is the advised way to keep
  # pods from the node's role (turn the rule off with a drop-in where that is the intent).
  when     = length([for c in facts.containers.list : c if c.fingerprint == "hop_limit_too_low"]) > 0 || (try(facts.ec2.metadata_options.hop_limit == 1, false) && try(facts.containers.present, false))
  severity = "warning"
  summary  = "IMDS token requests from containers get no answer while their tokenless requests do: the instance's hop limit (HttpPutResponseHopLimit) is too low for containers one hop behind this host: ${join("; ", [for c in facts.containers.list : "${c.runtime} ${substr(c.id, 0, 12)} (PID ${c.pid} ${c.command}: GET ${c.get_status} in ${floor(c.get_latency_ms)} ms, token PUT unanswered after ${floor(c.put_latency_ms)} ms)" if c.fingerprint == "hop_limit_too_low"])}${try(" (the EC2 API says HttpPutResponseHopLimit = ${facts.ec2.metadata_options.hop_limit})", "")}"
  hint     = "if the containers need IMDS, set the hop limit to 2: with settings { allow { ec2_api = true } } imdsmend apply does; by hand: aws ec2 modify-instance-metadata-options --instance-id ${try(facts.identity.instance_id != "" ? facts.identity.instance_id : "ID", "ID")} --http-put-response-hop-limit 2 --http-endpoint enabled (ModifyInstanceMetadataOptions; docs/ec2-api.md); if keeping them from it is the intent (EKS advises hop limit 1 for pods), turn this rule off: rule \"hop_limit_too_low\" { enabled = false } in a drop-in"
  evidence = {
    containers = [for c in facts.containers.list : c if c.fingerprint == "hop_limit_too_low"]
    hop_limit  = try(facts.ec2.metadata_options.hop_limit, null)
  }

  remediate "metadata_options" {
    hop_limit = 2
  }
}

rule "imds_mediated_unverified" {
  # systemd-imdsd's "locked" mode prohibits direct access on purpose; only a process that
  # may mark its sockets (CAP_NET_ADMIN) can take the daemon's path to check IMDS.
  when     = facts.imds.mediated_by != "" && !facts.imds.marked
  severity = "info"
  summary  = "IMDS is mediated by ${facts.imds.mediated_by}: direct requests are prohibited on purpose, and this process may not take the daemon's path to check it"
  hint     = "run imdsmend as root (CAP_NET_ADMIN) to probe along the daemon's path; programs read IMDS through it (systemd-imds, Varlink at /run/systemd/io.systemd.InstanceMetadata)"
}

rule "imds_http_error" {
  when     = !facts.imds.reachable && contains(["http_400", "http_401", "http_403", "http_404", "http_5xx", "bad_response"], facts.imds.class) && !(facts.imds.stage == "token" && facts.imds.class == "http_403")
  severity = "critical"
  summary  = "IMDS answers with an error: ${facts.imds.class} (HTTP ${facts.imds.status}) at the ${facts.imds.stage} step"
  hint     = "check the instance's metadata options and anything between this host and IMDS that rewrites requests"
}

rule "imds_ipv6_unreachable" {
  # Only with settings { ipv6 = true }: facts.imds_ipv6 is null otherwise, and try() keeps
  # this rule quiet instead of undecided. Under systemd-imdsd only its path counts, as for
  # imds_unreachable.
  when     = try(!facts.imds_ipv6.reachable && (facts.imds_ipv6.mediated_by == "" || facts.imds_ipv6.marked), false)
  severity = "warning"
  summary  = "IMDS over IPv6 at ${facts.imds_ipv6.endpoint} fails: ${facts.imds_ipv6.class}"
  hint     = "the IPv6 endpoint needs HttpProtocolIpv6=enabled, a Nitro instance and an IPv6 subnet; local causes show in the other findings"
}

rule "firewall_blocks_imds" {
  # Rules that certainly stop root's requests (imdsmend, cloud-init, the SSM agent). Those
  # scoped by socket owner (deliberate), those that hit far more than IMDS (broad: a DROP
  # of all output, a chain policy) and those whose comment says "imdsmend:keep" are
  # reported but never deleted by default.
  # Each rule says what apply does with it: deleted, or kept and why. A jump that leads to a
  # shared chain names the broad rule it spares.
  when     = length([for r in facts.firewall.rules : r if r.blocks]) > 0
  severity = "critical"
  summary  = "firewall rules stop root's requests to IMDS: ${join("; ", [for r in facts.firewall.rules : "${r.backend}/${r.family}/${r.table}/${r.chain}: ${r.spec} (${startswith(r.spec, "-P ") ? "kept: the chain's default policy" : r.deliberate ? "kept: owner-scoped, deliberate" : r.broad ? "kept: broad, it stops other traffic too" : strcontains(r.spec, "imdsmend:keep") ? "kept: marked imdsmend:keep" : r.leads_to != "" ? "deleted by apply: IMDS's own jump to ${r.leads_to}" : "deleted by apply"})" if r.blocks])}"
  hint     = length([for r in facts.firewall.rules : r if r.blocks && (r.deliberate || strcontains(r.spec, "imdsmend:keep"))]) == 0 && length([for r in facts.firewall.rules : r if r.blocks && r.broad]) > 0 ? "imdsmend apply allows IMDS before the broad rule instead of deleting it (firewall_allow: the narrowest ACCEPT, iptables -I OUTPUT N -d 169.254.169.254/32 -p tcp --dport 80 -m comment --comment imdsmend -j ACCEPT; a drop-in can narrow it to root with uids = [0], as -m owner --uid-owner 0 -j ACCEPT); the broad rule and the default policy stay (docs/firewall.md)" : length([for r in facts.firewall.rules : r if r.blocks && (r.deliberate || r.broad || strcontains(r.spec, "imdsmend:keep"))]) > 0 ? "a kept rule stays, and IMDS stays blocked for root, until it is changed by hand: an ACCEPT for root's requests before it opens IMDS (iptables -I OUTPUT 1 -d 169.254.169.254/32 -p tcp --dport 80 -m owner --uid-owner 0 -j ACCEPT); imdsmend apply adds one before a broad rule or a DROP policy (firewall_allow), not before an owner-scoped or imdsmend:keep rule; delete that with a drop-in (docs/firewall.md)" : "imdsmend apply deletes them; docs/firewall.md tells how to keep a rule"
  evidence = { rules = [for r in facts.firewall.rules : r if r.blocks] }

  remediate "firewall_delete" {
    rules = [for r in facts.firewall.rules : r if r.blocks && !r.deliberate && !r.broad && !strcontains(r.spec, "imdsmend:keep")]
  }

  # A broad blocker (a DROP policy on a default-deny host, a DROP of all output) is never
  # deleted or loosened: the narrowest ACCEPT for IMDS goes right before it instead. Not
  # before a shared chain's DROP whose IMDS-only jump firewall_delete removes.
  remediate "firewall_allow" {
    rules = [for r in facts.firewall.rules : r if r.blocks && r.broad && !r.deliberate && !strcontains(r.spec, "imdsmend:keep") && !contains([for j in facts.firewall.rules : j.leads_to if j.blocks && !j.deliberate && !j.broad], "${r.chain}: ${r.spec}")]
  }
}

rule "firewall_restricts_imds" {
  # Deliberate restrictions AWS documents (an --uid-owner REJECT for other users, the EKS
  # FORWARD DROP for pods) and rules that may or may not hit: root's requests pass, so the
  # run stays healthy and the rules stay.
  when     = length([for r in facts.firewall.rules : r if !r.blocks]) > 0
  severity = "info"
  summary  = "firewall rules restrict IMDS for some traffic but spare root's requests: ${join("; ", [for r in facts.firewall.rules : "${r.scope}${r.certain ? "" : " (uncertain)"}: ${r.backend}/${r.family}/${r.table}/${r.chain}: ${r.spec}" if !r.blocks])}"
  hint     = "kept on purpose; to have imdsmend remove one, add a drop-in that deletes it by pattern (docs/firewall.md)"
  evidence = { rules = [for r in facts.firewall.rules : r if !r.blocks] }
}

rule "no_route_to_imds" {
  # systemd-imdsd's prohibit route (with its fwmark policy rule) is intentional: left alone.
  when     = !facts.route.ok && facts.route.managed_by == ""
  severity = "critical"
  summary  = "no usable route to IMDS: ${facts.route.reason}"
  hint     = "routes are only reported unless the policy allows them: settings { allow { routes = true } } lets imdsmend route 169.254.169.254/32 via ${facts.route.primary_interface == "" ? "the primary interface" : facts.route.primary_interface}"
  evidence = { route = facts.route }

  remediate "route_restore" {
    interface = facts.route.primary_interface
    gateway   = facts.route.primary_gateway
  }
}

rule "proxy_leak" {
  # A proxy that receives IMDS requests breaks them (a token PUT through a proxy fails) or
  # sees the instance's role credentials. A source leaks when curl or a Go program using its
  # settings would send 169.254.169.254 (and fd00:ec2::254 with ipv6) to the proxy; curl and
  # Go read no_proxy differently (docs/proxy.md), so both spellings must list IMDS.
  when     = length([for s in facts.proxy.sources : s if s.leaks]) > 0
  severity = "critical"
  summary  = "IMDS requests would go to a proxy: ${join("; ", [for s in facts.proxy.sources : "${s.kind == "process" ? s.name : "${s.path}:${s.line}"} (${join(" and ", s.clients)} via ${s.proxy})" if s.leaks])}"
  hint     = "imdsmend apply adds 169.254.169.254 to no_proxy and NO_PROXY in those files; running services keep their environment until they restart (settings { allow { restart_units = true } } lets imdsmend restart them)"
  evidence = { sources = [for s in facts.proxy.sources : s if s.leaks] }

  remediate "no_proxy" {
    files = [for s in facts.proxy.sources : s.path if s.leaks && s.kind != "process"]
  }

  remediate "restart_unit" {
    units = [for s in facts.proxy.sources : s.unit if s.leaks && s.restart_fixes]
  }
}

rule "cloud_init_missed_metadata" {
  # cloud-init falls back to DataSourceNone when IMDS is blocked at boot and still reports
  # "done": user-data never ran, and nothing else says so. Only this boot's result counts
  # (facts.cloud_init.ran); a host without cloud-init has installed = false.
  when     = facts.cloud_init.ran && facts.cloud_init.finished && facts.cloud_init.datasource_name == "None" && facts.cloud_init.ec2_configured
  severity = "critical"
  summary  = "cloud-init finished this boot on ${facts.cloud_init.datasource} although the Ec2 datasource is configured: it got no metadata, so user-data did not run"
  hint     = "once IMDS is healthy (no other finding), rerun it from scratch: cloud-init clean --logs --reboot (settings { allow { reboot = true } } lets imdsmend apply do that)"
  evidence = {
    datasource      = facts.cloud_init.datasource
    datasource_list = facts.cloud_init.datasource_list
    errors          = facts.cloud_init.errors
    boot_id         = facts.cloud_init.boot_id
  }

  # Reboots the instance: only with settings { allow { reboot = true } }, only while IMDS
  # answers in this run, and once (docs/policy.md).
  remediate "cloud_init_rerun" {}
}

rule "imds_v1_allowed" {
  # Posture, not reachability, and only with the EC2 API's facts. Requiring tokens is
  # opt-in: a drop-in that defines this rule again with
  # remediate "metadata_options" { http_tokens = "required" } (docs/ec2-api.md), which
  # the fixer refuses while IMDSv1 callers are known.
  when     = try(facts.ec2.metadata_options.http_tokens == "optional", false)
  severity = "info"
  summary  = "IMDSv1 is still allowed on ${facts.ec2.instance_id} (HttpTokens optional); ${try(facts.ec2.image_imds_support == "v2.0", false) ? "its AMI ${facts.ec2.image_id} has ImdsSupport v2.0, which would have made it required: it was set optional at launch or since" : "its AMI ${facts.ec2.image_id} sets no ImdsSupport"}; ${try(facts.ec2.defaults.http_tokens == "required", false) ? "the account default in ${facts.ec2.region} is required (new instances get IMDSv2 only)" : "the account default in ${facts.ec2.region} sets no preference"}"
  hint     = "move the callers to IMDSv2, then: aws ec2 modify-instance-metadata-options --instance-id ${facts.ec2.instance_id} --http-tokens required; for new instances: aws ec2 modify-instance-metadata-defaults --http-tokens required, or register AMIs with --imds-support v2.0 (docs/ec2-api.md)"
  evidence = {
    http_tokens        = facts.ec2.metadata_options.http_tokens
    image_id           = facts.ec2.image_id
    image_imds_support = facts.ec2.image_imds_support
    account_default    = try(facts.ec2.defaults.http_tokens, null)
    managed_by         = try(facts.ec2.defaults.managed_by, null)
  }
}

rule "ec2_api_unavailable" {
  # The policy allows EC2 API calls, but they failed: the fixes that need the API will fail
  # the same way, so say who must change what before they are needed.
  when     = try(length(facts.ec2.errors) > 0, false)
  severity = "warning"
  summary  = "the EC2 API could not be asked about this instance: ${join("; ", [for e in facts.ec2.errors : "${e.op}: ${e.kind}${e.code != "" ? " (${e.code})" : ""}: ${e.message}"])}"
  hint     = join("; ", [for e in facts.ec2.errors : e.hint if e.hint != ""])
  evidence = {
    errors      = facts.ec2.errors
    credentials = facts.ec2.credentials
    region      = facts.ec2.region
    instance_id = facts.ec2.instance_id
  }
}
