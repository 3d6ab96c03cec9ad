# Tests of the proxy rule of the default policy (policy.hcl). Run them with `imdsmend test`.
# Facts are shaped as the proxy probe fills them.

test "a proxy in /etc/environment without no_proxy leaks" {
  facts = {
    proxy = { processes = 12, sources = [{
      name = "/etc/environment", kind = "environment_file", path = "/etc/environment", line = 1,
      variables = ["http_proxy"], proxy = "http://proxy.corp:3128", no_proxy = "",
      leaks = true, clients = ["curl", "go"], hosts = ["169.254.169.254"]
    }] }
  }
  expect = ["proxy_leak"]
}

test "a proxy that bypasses IMDS does not leak" {
  facts = {
    proxy = { sources = [{
      name = "/etc/environment", kind = "environment_file", path = "/etc/environment", line = 1,
      variables = ["http_proxy", "no_proxy", "NO_PROXY"], proxy = "http://proxy.corp:3128",
      no_proxy = "localhost,169.254.169.254", leaks = false
    }] }
  }
  expect = []
}

test "a leaking service whose unit files set the proxy" {
  facts = {
    proxy = { sources = [{
      name = "amazon-ssm-agent (pids 812) in amazon-ssm-agent.service", kind = "process", path = "/proc/812/environ",
      unit = "amazon-ssm-agent.service", pids = [812], command = "amazon-ssm-agent", variables = ["HTTPS_PROXY"],
      proxy = "http://proxy.corp:3128", leaks = true, clients = ["go"], hosts = ["169.254.169.254"], restart_fixes = true
    }] }
  }
  expect = ["proxy_leak"]
}

test "no proxy anywhere" {
  facts  = { proxy = { processes = 40, sources = [] } }
  expect = []
}

test "a failed proxy probe decides no proxy rule" {
  facts   = { proxy = null }
  expect  = []
  unknown = ["proxy_leak"]
}
