# Tests of the container rule of the default policy (policy.hcl). Run them with `imdsmend test`.
# Facts are shaped as the containers probe fills them.

test "a container's token PUT times out while its GET is answered: hop limit too low" {
  facts = {
    containers = {
      present = true, found = 2, max_probed = 4
      list = [
        { id = "4f1c2b3a4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef", runtime = "docker", pid = 1200, command = "nginx", netns = 4026532300,
        get_status = 401, get_latency_ms = 0.9, put_status = 0, put_timed_out = true, put_latency_ms = 1250, fingerprint = "hop_limit_too_low" },
        { id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", runtime = "cri-containerd", pod = "6b1e0f4c-9a3d-4e2b-8c1f-0d2e3f4a5b6c", pid = 1300,
        command = "pause", netns = 4026532400, get_status = 200, get_latency_ms = 1.1, put_timed_out = true, put_latency_ms = 1250, fingerprint = "hop_limit_too_low" },
      ]
    }
  }
  expect = ["hop_limit_too_low"]
}

test "containers served: no finding" {
  facts = {
    containers = {
      present = true, found = 1, max_probed = 4
      list = [{ id = "4f1c2b3a4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef", runtime = "docker", pid = 1200, get_status = 401, put_status = 200, fingerprint = "ok" }]
    }
  }
  expect = []
}

test "a container that reaches no IMDS at all is no hop limit" {
  facts = {
    containers = {
      present = true, found = 1, max_probed = 4
      list = [{ id = "4f1c2b3a4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef", runtime = "docker", pid = 1200, put_timed_out = true, fingerprint = "unreachable" }]
    }
  }
  expect = []
}

test "containers not probed decide nothing" {
  facts = {
    containers = {
      present = true, found = 9, max_probed = 4
      list = [{ id = "4f1c2b3a4d5e6f708192a3b4c5d6e7f80123456789abcdef0123456789abcdef", runtime = "docker", pid = 1200, fingerprint = "not_probed", error = "not probed: over the bound of 4 containers a run probes" }]
    }
  }
  expect = []
}

test "no containers" {
  facts  = { containers = { present = false, found = 0, max_probed = 4, list = [] } }
  expect = []
}

test "a failed containers probe decides no container rule" {
  facts   = { containers = null }
  expect  = []
  unknown = ["hop_limit_too_low"]
}
