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
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/imdsmend/imdsmend/tests/imdssim/sim"
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

	// Bind everything before serving anything: once the admin socket answers, the IMDS
	// listeners are ready too.
	var imdsListeners []net.Listener
	for _, addr := range listens {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		imdsListeners = append(imdsListeners, l)
	}
	var adminListener net.Listener
	if *admin != "" {
		if adminListener, err = listenAdmin(*admin); err != nil {
			return err
		}
	}

	errs := make(chan error, len(imdsListeners)+1)
	for _, l := range imdsListeners {
		go func() { errs <- srv.Serve(l) }()
	}
	if adminListener != nil {
		hs := &http.Server{Handler: srv.AdminHandler()}
		defer hs.Close()
		go func() {
			if err := hs.Serve(adminListener); !errors.Is(err, http.ErrServerClosed) {
				errs <- err
			}
		}()
	}
	fmt.Fprintf(os.Stderr, "imdssim: serving IMDS on %s with fault %s", strings.Join(listens, ", "), cfg.Fault)
	if *admin != "" {
		fmt.Fprintf(os.Stderr, "; admin on %s", *admin)
	}
	fmt.Fprintln(os.Stderr)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sigs:
		return srv.Close()
	case err := <-errs:
		_ = srv.Close()
		return err
	}
}

// listenAdmin opens the admin listener; a unix socket left over from a killed run is
// replaced.
func listenAdmin(addr string) (net.Listener, error) {
	path, isUnix := strings.CutPrefix(addr, "unix:")
	if !isUnix {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("admin listen on %s: %w", addr, err)
		}
		return l, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin listen on %s: %w", path, err)
	}
	return l, nil
}
