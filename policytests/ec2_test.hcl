# Tests of the rules on the EC2 API's facts (facts.ec2, with settings.allow.ec2_api) in the
# default policy. Run them with `imdsmend test`.

test "healthy, with the API's facts" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
    ec2  = { instance_id = "i-0123456789abcdef0", region = "us-east-1", credentials_found = true, metadata_options = { state = "applied", http_endpoint = "enabled", http_tokens = "required", hop_limit = 2 } }
  }
  expect = []
}

test "the API says the endpoint is disabled, and IMDS answers 403" {
  facts = {
    imds     = { reachable = false, class = "http_403", status = 403, token_status = 403, stage = "token" }
    identity = { instance_id = "i-0123456789abcdef0", region = "us-east-1" }
    ec2      = { instance_id = "i-0123456789abcdef0", region = "us-east-1", credentials_found = true, metadata_options = { state = "applied", http_endpoint = "disabled", http_tokens = "required", hop_limit = 2 } }
  }
  expect = ["imds_endpoint_disabled"]
}

test "the API says the endpoint is disabled while IMDS still answered (a kept answer)" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
    ec2  = { instance_id = "i-0123456789abcdef0", region = "us-east-1", metadata_options = { http_endpoint = "disabled", http_tokens = "required", hop_limit = 2 } }
  }
  expect = ["imds_endpoint_disabled"]
}

test "IMDSv1 allowed is reported as posture" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
    ec2  = { instance_id = "i-0123456789abcdef0", region = "us-east-1", image_id = "ami-1", image_imds_support = "v2.0", metadata_options = { http_endpoint = "enabled", http_tokens = "optional", hop_limit = 2 }, defaults = { http_tokens = "required", managed_by = "account" } }
  }
  expect = ["imds_v1_allowed"]
}

test "no credentials without IMDS is said plainly" {
  facts = {
    imds = { reachable = false, class = "http_403", status = 403, token_status = 403, stage = "token" }
    ec2  = { instance_id = "i-0123456789abcdef0", region = "us-east-1", errors = [{ op = "Authenticate", kind = "no_credentials", code = "", message = "no credential source has any", hint = "give imdsmend credentials that don't need IMDS" }] }
  }
  expect = ["imds_endpoint_disabled", "ec2_api_unavailable"]
}

test "without the API's facts, the API rules stay quiet" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
  }
  expect = []
}

test "the API's hop limit 1 with containers running" {
  facts = {
    imds       = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
    containers = { present = true, found = 1, max_probed = 4, list = [{ id = "4f1c2b3a4d5e", runtime = "docker", pid = 1200, get_status = 401, put_status = 200, fingerprint = "ok" }] }
    ec2        = { instance_id = "i-0123456789abcdef0", region = "us-east-1", metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 1 } }
  }
  expect = ["hop_limit_too_low"]
}

test "the API's hop limit 1 without containers is fine" {
  facts = {
    imds       = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
    containers = { present = false, found = 0, max_probed = 4, list = [] }
    ec2        = { instance_id = "i-0123456789abcdef0", region = "us-east-1", metadata_options = { http_endpoint = "enabled", http_tokens = "required", hop_limit = 1 } }
  }
  expect = []
}
