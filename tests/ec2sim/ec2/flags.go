package ec2

import (
	"flag"
	"fmt"
	"strings"
)

// ConfigFlags are the command-line flags of a simulator: the fault, the pending→applied
// behaviour, the throttling and the fleet. The ec2sim command registers them bare, the
// imdssim command with an "ec2-" prefix.
type ConfigFlags struct {
	fields map[string]*string // by configFields name
	fleet  FleetSpec
	keys   map[string]string
	roles  []string
}

// RegisterConfigFlags adds the flags to fs, each name prefixed with prefix.
func RegisterConfigFlags(fs *flag.FlagSet, prefix string) *ConfigFlags {
	var names []string
	for _, f := range Faults() {
		names = append(names, string(f))
	}
	usage := map[string]string{
		"fault":       "EC2 API fault to inject: " + strings.Join(names, ", "),
		"actions":     "limit the fault to these actions (comma-separated, e.g. ModifyInstanceMetadataOptions)",
		"regions":     "limit the fault to requests scoped to these regions (comma-separated)",
		"times":       "the fault spoils this many answers, then the API is healthy (default 0: all)",
		"delay":       "slow: wait this long before each answer (default " + DefaultDelay.String() + ")",
		"apply_after": "DescribeInstances answers that show a change pending before it is applied (default 1)",
		"apply_delay": "apply a change this long after it was made instead of counting Describes",
		"throttle":    "request rate limits, a bucket per action, account and region: off, default (EC2's: mutating 200/5, non-mutating 100/20, unpaginated 50/10), or MUT,NONMUT[,UNPAGINATED] as BURST/RATE",
	}
	flagName := map[string]string{"actions": "fault-actions", "regions": "fault-regions", "times": "fault-times"}
	c := &ConfigFlags{fields: map[string]*string{}, keys: map[string]string{}}
	for _, f := range configFields {
		name, ok := flagName[f]
		if !ok {
			name = strings.ReplaceAll(f, "_", "-")
		}
		c.fields[f] = fs.String(prefix+name, "", usage[f])
	}
	fs.Func(prefix+"access-key", "KEY=ACCOUNT: requests signed with access key KEY belong to ACCOUNT (repeatable; any other key is account "+DefaultAccount+")", func(v string) error {
		key, account, ok := strings.Cut(v, "=")
		if !ok || key == "" || len(account) != 12 {
			return fmt.Errorf("access key %q: want KEY=ACCOUNT with a 12-digit account", v)
		}
		c.keys[key] = account
		return nil
	})
	fs.Func(prefix+"role", "a role ARN (arn:aws:iam::ACCOUNT:role/NAME) that AssumeRole and AssumeRoleWithWebIdentity accept (repeatable)", func(v string) error {
		if account, _ := parseRoleARN(v); account == "" {
			return fmt.Errorf("role %q: want arn:aws:iam::ACCOUNT:role/NAME", v)
		}
		c.roles = append(c.roles, v)
		return nil
	})
	fs.IntVar(&c.fleet.Instances, prefix+"instances", 0, "generate a fleet of this many instances (default: the one instance the IMDS simulator describes)")
	fs.IntVar(&c.fleet.Regions, prefix+"regions", 1, "generated fleet: spread over this many regions")
	fs.IntVar(&c.fleet.Accounts, prefix+"accounts", 1, "generated fleet: spread over this many accounts (each offers "+RoleARN("ACCOUNT")+" to AssumeRole)")
	fs.Int64Var(&c.fleet.Seed, prefix+"seed", 1, "generated fleet: random seed of the mix of options, tags and states")
	return c
}

// Config is the configuration the flags describe.
func (c *ConfigFlags) Config() (Config, error) {
	return ParseConfig(func(name string) string { return *c.fields[name] })
}

// Server builds the simulator the flags describe: a generated fleet, or the default
// instance.
func (c *ConfigFlags) Server() (*Server, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	var s *Server
	if c.fleet.Instances == 0 {
		s = NewDefault(cfg)
	} else {
		s = New(cfg)
		if err := s.Generate(c.fleet); err != nil {
			return nil, err
		}
	}
	for key, account := range c.keys {
		s.AddAccessKey(key, account)
	}
	for _, role := range c.roles {
		s.AddRole(role)
	}
	return s, nil
}
