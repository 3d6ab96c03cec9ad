package ec2

import (
	"flag"
	"strings"
)

// ConfigFlags are the command-line flags of a simulator: the fault, the pending→applied
// behaviour, the throttling and the fleet. The ec2sim command registers them bare, the
// imdssim command with an "ec2-" prefix.
type ConfigFlags struct {
	fault, actions, times, delay, applyAfter, applyDelay, throttle *string
	fleet                                                          FleetSpec
}

// RegisterConfigFlags adds the flags to fs, each name prefixed with prefix.
func RegisterConfigFlags(fs *flag.FlagSet, prefix string) *ConfigFlags {
	var names []string
	for _, f := range Faults() {
		names = append(names, string(f))
	}
	c := &ConfigFlags{
		fault:      fs.String(prefix+"fault", string(FaultOK), "EC2 API fault to inject: "+strings.Join(names, ", ")),
		actions:    fs.String(prefix+"fault-actions", "", "limit the fault to these actions (comma-separated, e.g. ModifyInstanceMetadataOptions)"),
		times:      fs.String(prefix+"fault-times", "", "the fault spoils this many answers, then the API is healthy (default 0: all)"),
		delay:      fs.String(prefix+"delay", "", "slow: wait this long before each answer (default "+DefaultDelay.String()+")"),
		applyAfter: fs.String(prefix+"apply-after", "", "DescribeInstances answers that show a change pending before it is applied (default 1)"),
		applyDelay: fs.String(prefix+"apply-delay", "", "apply a change this long after it was made instead of counting Describes"),
		throttle:   fs.String(prefix+"throttle", "", "request token buckets per account and region: off, default (EC2's: 50/5,100/20), or MUTBURST/RATE,BURST/RATE"),
	}
	fs.IntVar(&c.fleet.Instances, prefix+"instances", 0, "generate a fleet of this many instances (default: the one instance the IMDS simulator describes)")
	fs.IntVar(&c.fleet.Regions, prefix+"regions", 1, "generated fleet: spread over this many regions")
	fs.IntVar(&c.fleet.Accounts, prefix+"accounts", 1, "generated fleet: spread over this many accounts (each offers "+RoleARN("ACCOUNT")+" to AssumeRole)")
	fs.Int64Var(&c.fleet.Seed, prefix+"seed", 1, "generated fleet: random seed of the mix of options, tags and states")
	return c
}

// Config is the configuration the flags describe.
func (c *ConfigFlags) Config() (Config, error) {
	return ParseConfig(*c.fault, *c.actions, *c.times, *c.delay, *c.applyAfter, *c.applyDelay, *c.throttle)
}

// Server builds the simulator the flags describe: a generated fleet, or the default
// instance.
func (c *ConfigFlags) Server() (*Server, error) {
	cfg, err := c.Config()
	if err != nil {
		return nil, err
	}
	if c.fleet.Instances == 0 {
		return NewDefault(cfg), nil
	}
	s := New(cfg)
	if err := s.Generate(c.fleet); err != nil {
		return nil, err
	}
	return s, nil
}
