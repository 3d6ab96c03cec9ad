# Tests of the IMDS rules of the default policy (policy.hcl). Run them with `imdsmend test`.
# Each test gives facts and the rules that must fire; every other rule must not.
# A section left out (firewall, route, ...) is null, as if its probe had failed.

test "healthy IMDSv2" {
  facts = {
    imds = { endpoint = "http://169.254.169.254", reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get", attempts = 2 }
  }
  expect = []
}

test "IMDSv1 only is reachable, not an error" {
  facts = {
    imds = { reachable = true, version = "v1", class = "ok", status = 200, token_status = 403, stage = "get" }
  }
  expect = []
}

test "403 on the token PUT means the endpoint is disabled" {
  facts = {
    imds = { reachable = false, class = "http_403", status = 403, token_status = 403, stage = "token" }
  }
  expect = ["imds_endpoint_disabled"]
}

test "403 on the metadata GET is an HTTP error" {
  facts = {
    imds = { reachable = false, class = "http_403", status = 403, token_status = 200, stage = "get" }
  }
  expect = ["imds_http_error"]
}

test "throttled" {
  facts = {
    imds = { reachable = false, class = "http_429", status = 429, stage = "get", attempts = 3 }
  }
  expect = ["imds_throttled"]
}

test "connection refused" {
  facts  = { imds = { class = "connection_refused", stage = "token" } }
  expect = ["imds_unreachable"]
}

test "timeout" {
  facts  = { imds = { class = "timeout", stage = "token", attempts = 3 } }
  expect = ["imds_unreachable"]
}

test "no route" {
  facts  = { imds = { class = "no_route", stage = "token" } }
  expect = ["imds_unreachable"]
}

test "a proxy in the way" {
  facts  = { imds = { class = "proxy", stage = "token" } }
  expect = ["imds_unreachable"]
}

test "server errors" {
  facts  = { imds = { class = "http_5xx", status = 503, stage = "get", attempts = 3 } }
  expect = ["imds_http_error"]
}

test "not found" {
  facts  = { imds = { class = "http_404", status = 404, stage = "get" } }
  expect = ["imds_http_error"]
}

test "garbage answer" {
  facts  = { imds = { class = "bad_response", status = 200, stage = "get" } }
  expect = ["imds_http_error"]
}

test "a failed IMDS probe decides none of the IMDS rules" {
  facts   = { probes = { imds = { ok = false, error = "probe panicked" } } }
  expect  = []
  unknown = ["imds_endpoint_disabled", "imds_http_error", "imds_mediated_unverified", "imds_throttled", "imds_unreachable"]
}

test "IPv6 on and its endpoint unreachable while IPv4 works" {
  facts = {
    imds      = { reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get" }
    imds_ipv6 = { endpoint = "http://[fd00:ec2::254]", reachable = false, class = "timeout", stage = "token" }
  }
  expect = ["imds_ipv6_unreachable"]
}

test "IPv6 on and reachable" {
  facts = {
    imds      = { reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get" }
    imds_ipv6 = { endpoint = "http://[fd00:ec2::254]", reachable = true, version = "v2", class = "ok", status = 200, stage = "get" }
  }
  expect = []
}

test "systemd-imdsd mediates IMDS and its path works" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get", mediated_by = "systemd-imdsd", marked = true }
  }
  expect = []
}

test "systemd-imdsd mediates IMDS and its path fails" {
  facts = {
    imds = { class = "connection_refused", stage = "token", mediated_by = "systemd-imdsd", marked = true }
  }
  expect = ["imds_unreachable"]
}

test "systemd-imdsd mediates IMDS, its path untested without CAP_NET_ADMIN" {
  facts = {
    imds = { class = "no_route", stage = "token", mediated_by = "systemd-imdsd", marked = false }
  }
  expect = ["imds_mediated_unverified"]
}

test "IPv6 mediated by systemd-imdsd: only its path counts" {
  facts = {
    imds      = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get", mediated_by = "systemd-imdsd", marked = true }
    imds_ipv6 = { endpoint = "http://[fd00:ec2::254]", class = "no_route", stage = "token", mediated_by = "systemd-imdsd", marked = false }
  }
  expect = []
}

test "IPv6 failing along systemd-imdsd's path" {
  facts = {
    imds      = { reachable = true, version = "v2", class = "ok", status = 200, stage = "get", mediated_by = "systemd-imdsd", marked = true }
    imds_ipv6 = { endpoint = "http://[fd00:ec2::254]", class = "timeout", stage = "token", mediated_by = "systemd-imdsd", marked = true }
  }
  expect = ["imds_ipv6_unreachable"]
}

test "throttled: linklocal_allowance_exceeded rose, IMDS answered" {
  facts = {
    imds    = { reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get" }
    nic     = { linklocal_allowance_exceeded_delta = 1873, window_seconds = 300 }
    callers = { top = [{ pid = 4242, command = "poller", uid = 1000, unit = "poller.service", connections = 37 }] }
  }
  expect = ["imds_throttled"]
}

test "throttled: 429 with the callers named" {
  facts = {
    imds    = { reachable = false, class = "http_429", status = 429, stage = "get", attempts = 3 }
    nic     = { linklocal_allowance_exceeded_delta = 0, window_seconds = 300 }
    callers = { top = [{ pid = 4242, command = "poller", uid = 1000, unit = "", connections = 37 }] }
  }
  expect = ["imds_throttled"]
}

test "counters unchanged: not throttled" {
  facts = {
    imds = { reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get" }
    nic  = { linklocal_allowance_exceeded_delta = 0, window_seconds = 300 }
  }
  expect = []
}

test "a failed nic probe leaves the 429 sign" {
  facts  = { imds = { reachable = true, version = "v2", class = "ok", status = 200, token_status = 200, stage = "get" } }
  expect = []
}
