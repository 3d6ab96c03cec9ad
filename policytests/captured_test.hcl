# Tests on facts captured with `imdsmend facts --format json` inside a network namespace
# serving IMDS with the simulator (tests/imdssim): a healthy instance, the AWS article's
# REJECT for everyone, and its owner-scoped REJECT for uids 1000-10000.

test "captured: healthy" {
  facts_file = "testdata/healthy.json"
  expect     = []
}

test "captured: REJECT for everyone" {
  facts_file = "testdata/firewall_reject.json"
  expect     = ["firewall_blocks_imds", "imds_unreachable"]
}

test "captured: owner-scoped REJECT leaves root's requests alone" {
  facts_file = "testdata/owner_restricted.json"
  expect     = ["firewall_restricts_imds"]
}

test "captured facts with the IMDS section replaced" {
  facts_file = "testdata/healthy.json"
  facts      = { imds = { class = "http_429", status = 429, stage = "get", attempts = 3 } }
  expect     = ["imds_throttled"]
}
