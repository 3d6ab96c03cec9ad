// Command imdssim serves a simulated EC2 Instance Metadata Service (IMDSv2, tokens
// required) with an injectable fault, for tests, the demo and anyone who wants to point a
// real client at a broken IMDS:
//
//	go run ./tests/imdssim --listen 127.0.0.1:8080 --fault throttle --rate 5
//	TOKEN=$(curl -s -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' http://127.0.0.1:8080/latest/api/token)
//	curl -H "X-aws-ec2-metadata-token: $TOKEN" http://127.0.0.1:8080/latest/meta-data/instance-id
//
// With --admin, a second listener reports counters and changes the fault at run time
// (see package sim).
//
// With --ec2 ADDR the same process serves the EC2 API simulator (tests/ec2sim) for the
// same instance, and IMDS follows its metadata options: HttpEndpoint=disabled answers 403,
// HttpTokens=optional lets tokenless GETs in, and the hop limit is the IP TTL of token
// answers. --hop-limit N does the same without serving the API. The admin listener then
// serves the EC2 simulator's admin under /ec2/ (POST /ec2/options id=… hop_limit=1).
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/imdsmend/imdsmend/tests/ec2sim/ec2"
	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
	"github.com/imdsmend/imdsmend/tests/simkit"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "imdssim: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("imdssim", flag.ContinueOnError)
	var listens []string
	fs.Func("listen", "address to serve IMDS on, e.g. 127.0.0.1:8080 or [fd00:ec2::254]:80 (repeatable; default 127.0.0.1:8080)", func(v string) error {
		listens = append(listens, v)
		return nil
	})
	var names []string
	for _, f := range sim.Faults() {
		names = append(names, string(f))
	}
	fault := fs.String("fault", string(sim.FaultOK), "fault to inject: "+strings.Join(names, ", "))
	rate := fs.String("rate", "", "throttle: requests per second let through before 429 (default 0: throttle all)")
	delay := fs.String("delay", "", "slow: wait this long before each answer (default "+sim.DefaultDelay.String()+")")
	userData := fs.String("user-data", "", "file whose content /latest/user-data serves (default: none, 404)")
	admin := fs.String("admin", "", "admin listener (stats, reset, fault changes): HOST:PORT or unix:PATH")
	ec2Addr := fs.String("ec2", "", "also serve the EC2 API simulator for this instance on ADDR; IMDS follows its metadata options")
	hopLimit := fs.Int("hop-limit", 0, "the instance's hop limit, the IP TTL of token answers (default with --ec2: 2; without: TTL untouched)")
	ec2Flags := ec2.RegisterConfigFlags(fs, "ec2-")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(listens) == 0 {
		listens = []string{"127.0.0.1:8080"}
	}
	cfg, err := sim.ParseConfig(*fault, *rate, *delay)
	if err != nil {
		return err
	}
	if *userData != "" {
		data, err := os.ReadFile(*userData)
		if err != nil {
			return fmt.Errorf("user data: %w", err)
		}
		cfg.UserData = string(data)
	}
	srv := sim.New(cfg)
	sv := simkit.Serving{Close: srv.Close, Handler: srv.AdminHandler()}

	var api *ec2.Server
	if *ec2Addr != "" || *hopLimit != 0 {
		if api, err = instanceAPI(srv, ec2Flags, *hopLimit); err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/", srv.AdminHandler())
		mux.Handle(ec2.IMDSSimMount+"/", http.StripPrefix(ec2.IMDSSimMount, api.AdminHandler()))
		sv.Handler = mux
		sv.Close = func() error { return closeBoth(srv, api) }
	}

	// Bind everything before serving anything: once the admin socket answers, the IMDS
	// (and EC2) listeners are ready too.
	for _, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		sv.Serves = append(sv.Serves, func() error { return srv.Serve(l) })
	}
	if *ec2Addr != "" {
		l, err := net.Listen("tcp", *ec2Addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", *ec2Addr, err)
		}
		sv.Serves = append(sv.Serves, func() error { return api.Serve(l) })
	}
	if *admin != "" {
		if sv.Admin, err = simkit.Listen(*admin); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "imdssim: serving IMDS on %s with fault %s", strings.Join(listens, ", "), cfg.Fault)
	if *ec2Addr != "" {
		fmt.Fprintf(os.Stderr, "; the EC2 API on %s", *ec2Addr)
	}
	if *admin != "" {
		fmt.Fprintf(os.Stderr, "; admin on %s", *admin)
	}
	fmt.Fprintln(os.Stderr)
	return simkit.Run(sv)
}

// instanceAPI builds the EC2 simulator that holds this instance's metadata options and
// makes IMDS follow them.
func instanceAPI(srv *sim.Server, flags *ec2.ConfigFlags, hopLimit int) (*ec2.Server, error) {
	if hopLimit < 0 || hopLimit > 64 {
		return nil, fmt.Errorf("hop limit %d: want 1 to 64", hopLimit)
	}
	api, err := flags.Server()
	if err != nil {
		return nil, err
	}
	if _, ok := api.Instance(sim.InstanceID); !ok {
		// A generated fleet: this instance joins it.
		api.AddInstance(ec2.Instance{ID: sim.InstanceID, Region: sim.Region})
	}
	if hopLimit > 0 {
		o, _ := api.Instance(sim.InstanceID)
		o.Options.HopLimit = hopLimit
		if err := api.SetOptions(sim.InstanceID, o.Options); err != nil {
			return nil, err
		}
	}
	srv.SetOptionsSource(func() ec2.Options {
		o, _ := api.EffectiveOptions(sim.InstanceID)
		return o
	})
	return api, nil
}

func closeBoth(srv *sim.Server, api *ec2.Server) error {
	err := srv.Close()
	if apiErr := api.Close(); err == nil {
		err = apiErr
	}
	return err
}
