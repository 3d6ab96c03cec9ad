# Every function of docs/policy.md, each used once where a policy might use it.
rule "strings" {
  when = alltrue([
    lower(facts.imds.class) == "ok",
    upper(facts.imds.version) == "V2",
    trimspace(facts.imds.error) == "",
    trimprefix(facts.imds.endpoint, "http://") != "",
    trimsuffix(facts.imds.endpoint, "/") != "",
    length(split(":", facts.imds.endpoint)) > 1,
    substr(facts.imds.class, 0, 4) == "http",
    strlen(facts.imds.stage) > 0,
    startswith(facts.imds.class, "http_"),
    endswith(facts.imds.class, "xx"),
    strcontains(facts.imds.endpoint, "169.254"),
    can(regex("^http_[45]", facts.imds.class)),
    length(regexall("[0-9]", facts.imds.class)) > 0,
  ])
  severity = "info"
  summary  = join(" ", [facts.imds.class, facts.imds.version])
}

rule "collections" {
  when = anytrue([
    contains(keys(facts.probes), "imds"),
    length(values(facts.probes)) > 0,
    length(concat(facts.firewall.rules, facts.firewall.rules)) > 0,
    length(sort([for r in facts.firewall.rules : r.chain])) > 1,
    length(flatten([[for r in facts.firewall.rules : r.id]])) > 0,
    lookup({ a = facts.imds.class }, "a", "none") == "ok",
    element([facts.imds.class], 0) == "ok",
    coalesce(facts.imds.error, facts.imds.class) != "",
    length(coalescelist([for r in facts.firewall.rules : r.id], ["none"])) > 0,
    length(compact([facts.imds.error])) > 0,
    lookup(merge({ a = facts.imds.class }, { b = facts.imds.stage }), "b", "") != "",
  ])
  severity = "info"
  summary  = "collections"
}

rule "numbers" {
  when = anytrue([
    min(facts.imds.status, 500) >= 400,
    max(facts.imds.attempts, 1) > 3,
    abs(facts.imds.latency_ms) > 100,
    ceil(facts.imds.latency_ms) > floor(facts.imds.latency_ms),
    parseint(tostring(facts.imds.status), 10) == 429,
    tonumber(tostring(facts.imds.attempts)) > 1,
    tobool(tostring(facts.imds.reachable)),
  ])
  severity = "info"
  summary  = "status ${facts.imds.status}"
}

rule "network" {
  when     = cidrcontains("169.254.0.0/16", trimprefix(facts.imds.endpoint, "http://"))
  severity = "info"
  summary  = "link-local endpoint"
}
