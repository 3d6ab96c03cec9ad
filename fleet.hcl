# imdsmend default fleet policy, read by `imdsmend fleet audit|plan|apply`. Copy it to
# /etc/imdsmend/fleet.hcl (or name a file with --policy) to change it, or add drop-ins in
# fleet.d/ beside it. The rules read one instance at a time: facts.instance, facts.account
# and facts.region (docs/fleet.md lists them); the language is that of docs/policy.md.

settings {
  mode = "enforce"

  # `imdsmend fleet apply` calls ModifyInstanceMetadataOptions; audit and plan never do.
  allow {
    ec2_api = true
  }

  # One apply changes at most max_changes instances and stops when more than
  # max_error_rate of its changes failed.
  fleet {
    max_changes    = 100
    max_error_rate = 0.05
  }
}

rule "endpoint_disabled" {
  # Nothing on the instance can read its metadata: no role credentials, no user data, and
  # cloud-init falls back to no datasource. Tag an instance imdsmend:imds = "disabled" to
  # keep its endpoint off on purpose.
  when     = facts.instance.metadata_options.http_endpoint == "disabled" && lookup(facts.instance.tags, "imdsmend:imds", "") != "disabled"
  severity = "critical"
  summary  = "${facts.instance.id} (${facts.instance.name}) in ${facts.account.id}/${facts.region}: HttpEndpoint is disabled, so nothing on it can read its metadata or role credentials${facts.account.defaults.http_endpoint == "disabled" ? "; the account default in ${facts.region} disables it for new instances too" : ""}"
  hint     = facts.account.defaults.http_endpoint == "disabled" ? "imdsmend fleet apply enables it; also change the account default (aws ec2 modify-instance-metadata-defaults --http-endpoint enabled${facts.account.defaults.managed_by == "declarative-policy" ? ", which only the organization's declarative policy can" : ""})" : "imdsmend fleet apply enables it, or tag the instance imdsmend:imds = disabled to keep it off on purpose"
  evidence = {
    http_endpoint    = facts.instance.metadata_options.http_endpoint
    account_default  = facts.account.defaults.http_endpoint
    defaults_managed = facts.account.defaults.managed_by
  }
  remediate "metadata_options" {
    http_endpoint = "enabled"
  }
}

rule "hop_limit_too_low" {
  # A container's requests cross one more hop (its bridge or pod network); with a hop
  # limit of 1 the token PUT's reply dies on the way and IMDSv2 hangs in the container.
  # container_host comes from EKS, Karpenter and ECS tags; add your own tag here, e.g.
  # || lookup(facts.instance.tags, "role", "") == "docker".
  # Also with the endpoint disabled: apply then enables it and raises the limit in one call.
  when     = facts.instance.container_host && facts.instance.metadata_options.hop_limit < 2
  severity = "warning"
  summary  = "${facts.instance.id} (${facts.instance.name}) in ${facts.account.id}/${facts.region}: hop limit ${facts.instance.metadata_options.hop_limit} on a container host (tag ${facts.instance.container_tag}): containers' IMDSv2 token requests time out${facts.account.defaults.hop_limit == 1 ? "; the account default in ${facts.region} is 1 too" : ""}"
  hint     = "imdsmend fleet apply sets it to 2 (aws ec2 modify-instance-metadata-options --http-put-response-hop-limit 2)"
  evidence = {
    hop_limit       = facts.instance.metadata_options.hop_limit
    container_tag   = facts.instance.container_tag
    account_default = facts.account.defaults.hop_limit
  }
  remediate "metadata_options" {
    hop_limit = 2
  }
}

rule "http_tokens_optional" {
  # IMDSv1 is still allowed. Reported only: requiring tokens breaks callers that only
  # speak v1; a drop-in may add remediate "metadata_options" { http_tokens = "required" }
  # once they are gone (imdsmend check on the instances names them).
  when     = facts.instance.metadata_options.http_tokens == "optional" && facts.instance.metadata_options.http_endpoint == "enabled"
  severity = "info"
  summary  = "${facts.instance.id} (${facts.instance.name}) in ${facts.account.id}/${facts.region}: HttpTokens is optional, IMDSv1 is still allowed${facts.instance.image_imds_support == "v2.0" ? " although its AMI asks for v2.0" : "; its AMI does not set ImdsSupport v2.0"}${facts.account.defaults.http_tokens == "required" ? " and the account default requires tokens (it launched before, or its launch said optional)" : facts.account.defaults.known ? "; the account default does not require tokens" : ""}"
  hint     = "require tokens once no caller needs IMDSv1: set ImdsSupport v2.0 on the AMI, aws ec2 modify-instance-metadata-defaults --http-tokens required for new instances, and a fleet drop-in with http_tokens = \"required\" for these"
  evidence = {
    http_tokens        = facts.instance.metadata_options.http_tokens
    image_id           = facts.instance.image_id
    image_imds_support = facts.instance.image_imds_support
    account_default    = facts.account.defaults.http_tokens
  }
}

rule "ipv6_endpoint_disabled" {
  # An instance with an IPv6 address may run IPv6-only workloads, which reach IMDS at
  # [fd00:ec2::254] only when HttpProtocolIpv6 is enabled.
  when     = facts.instance.ipv6 && facts.instance.metadata_options.http_protocol_ipv6 == "disabled"
  severity = "warning"
  summary  = "${facts.instance.id} (${facts.instance.name}) in ${facts.account.id}/${facts.region}: it has an IPv6 address but the IMDS IPv6 endpoint is off"
  hint     = "imdsmend fleet apply enables it (aws ec2 modify-instance-metadata-options --http-protocol-ipv6 enabled)"
  evidence = {
    http_protocol_ipv6 = facts.instance.metadata_options.http_protocol_ipv6
  }
  remediate "metadata_options" {
    http_protocol_ipv6 = "enabled"
  }
}

rule "options_pending" {
  # A change to the options is not in effect yet; the instance runs with the old ones.
  when     = facts.instance.metadata_options.state == "pending"
  severity = "warning"
  summary  = "${facts.instance.id} (${facts.instance.name}) in ${facts.account.id}/${facts.region}: a metadata options change is still pending"
  hint     = "wait and audit again; a stopped instance applies it when it starts"
  evidence = {
    state = facts.instance.metadata_options.state
  }
}
