// Command ec2sim serves a simulated EC2 Query API (DescribeInstances,
// ModifyInstanceMetadataOptions, GetInstanceMetadataDefaults, DescribeRegions,
// DescribeImages) and STS (AssumeRole, GetCallerIdentity) with injectable faults, so the
// AWS SDK and the AWS CLI can be pointed at it:
//
//	go run ./tests/ec2sim --listen 127.0.0.1:8081
//	AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_REGION=us-east-1 \
//	  aws --endpoint-url http://127.0.0.1:8081 ec2 describe-instances
//
// With --admin, a second listener reports counters and changes faults and options at run
// time (see package ec2).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/simkit"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "ec2sim: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("ec2sim", flag.ContinueOnError)
	var listens []string
	fs.Func("listen", "address to serve the EC2 API on (repeatable; default 127.0.0.1:8081)", func(v string) error {
		listens = append(listens, v)
		return nil
	})
	admin := fs.String("admin", "", "admin listener (stats, config, instances, options): HOST:PORT or unix:PATH")
	cfgFlags := ec2.RegisterConfigFlags(fs, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(listens) == 0 {
		listens = []string{"127.0.0.1:8081"}
	}
	srv, err := cfgFlags.Server()
	if err != nil {
		return err
	}
	sv := simkit.Serving{Close: srv.Close, Handler: srv.AdminHandler()}
	for _, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		sv.Serves = append(sv.Serves, func() error { return srv.Serve(l) })
	}
	if *admin != "" {
		if sv.Admin, err = simkit.Listen(*admin); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "ec2sim: serving the EC2 API on %s with %d instances in %s, fault %s", strings.Join(listens, ", "), len(srv.Instances()), strings.Join(srv.Regions(), ","), srv.Config().Fault)
	if *admin != "" {
		fmt.Fprintf(os.Stderr, "; admin on %s", *admin)
	}
	fmt.Fprintln(os.Stderr)
	return simkit.Run(sv)
}
