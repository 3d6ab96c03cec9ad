# Tests of the default fleet policy (fleet.hcl). Run them with `imdsmend test`.
# Each test gives one instance's facts and the rules that must fire; every other rule must
# not. Attributes left out are zero ("" or 0 or false).

test "healthy instance" {
  facts = {
    region   = "eu-central-1"
    account  = { id = "111122223333", defaults = { known = true } }
    instance = { id = "i-0a", name = "web-1", state = "running",
      metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 2, http_protocol_ipv6 = "disabled", state = "applied" } }
  }
  expect = []
}

test "endpoint disabled is mended" {
  facts = {
    region   = "eu-central-1"
    account  = { id = "111122223333", defaults = { known = true, http_endpoint = "disabled", managed_by = "account" } }
    instance = { id = "i-0b", name = "batch", metadata_options = { http_endpoint = "disabled", http_tokens = "required", hop_limit = 1, state = "applied" } }
  }
  expect = ["endpoint_disabled"]
  remediate "endpoint_disabled" "metadata_options" {
    http_endpoint = "enabled"
  }
}

test "endpoint disabled on purpose" {
  facts = {
    region   = "eu-central-1"
    account  = { id = "111122223333" }
    instance = { id = "i-0c", tags = { "imdsmend:imds" = "disabled" }, metadata_options = { http_endpoint = "disabled", http_tokens = "required", hop_limit = 1, state = "applied" } }
  }
  expect = []
}

test "hop limit 1 on an EKS node" {
  facts = {
    region   = "us-east-1"
    account  = { id = "111122223333", defaults = { known = true, hop_limit = 1 } }
    instance = { id = "i-0d", name = "eks-node", container_host = true, container_tag = "eks:cluster-name",
      metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 1, state = "applied" } }
  }
  expect = ["hop_limit_too_low"]
  remediate "hop_limit_too_low" "metadata_options" {
    hop_limit = 2
  }
}

test "hop limit 1 without containers is fine" {
  facts = {
    region   = "us-east-1"
    account  = { id = "111122223333" }
    instance = { id = "i-0e", metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 1, state = "applied" } }
  }
  expect = []
}

test "tokens optional is reported, not mended" {
  facts = {
    region   = "us-east-1"
    account  = { id = "111122223333", defaults = { known = true, http_tokens = "required" } }
    instance = { id = "i-0f", image_id = "ami-1", image_imds_support = "v2.0", metadata_options = { http_endpoint = "enabled", http_tokens = "optional", hop_limit = 2, state = "applied" } }
  }
  expect = ["http_tokens_optional"]
}

test "IPv6 workload without the IPv6 endpoint" {
  facts = {
    region   = "eu-west-1"
    account  = { id = "444455556666", role_arn = "arn:aws:iam::444455556666:role/imdsmend-audit" }
    instance = { id = "i-10", ipv6 = true, metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 2, http_protocol_ipv6 = "disabled", state = "applied" } }
  }
  expect = ["ipv6_endpoint_disabled"]
  remediate "ipv6_endpoint_disabled" "metadata_options" {
    http_protocol_ipv6 = "enabled"
  }
}

test "a pending change" {
  facts = {
    region   = "eu-west-1"
    account  = { id = "444455556666" }
    instance = { id = "i-11", metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 2, state = "pending" } }
  }
  expect = ["options_pending"]
}

test "a disabled endpoint on an IPv6 container host: every fix in one change" {
  facts = {
    region   = "eu-west-1"
    account  = { id = "444455556666" }
    instance = { id = "i-12", container_host = true, ipv6 = true, metadata_options = { http_endpoint = "disabled", http_tokens = "optional", hop_limit = 1, http_protocol_ipv6 = "disabled", state = "applied" } }
  }
  # http_tokens_optional waits until the endpoint is on.
  expect = ["endpoint_disabled", "hop_limit_too_low", "ipv6_endpoint_disabled"]
  remediate "endpoint_disabled" "metadata_options" {
    http_endpoint = "enabled"
  }
  remediate "hop_limit_too_low" "metadata_options" {
    hop_limit = 2
  }
}
