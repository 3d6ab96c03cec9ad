package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/imdsmend/imdsmend/internal/engine"
	"github.com/imdsmend/imdsmend/internal/events"
	"github.com/imdsmend/imdsmend/internal/events/iptlegacy"
	"github.com/imdsmend/imdsmend/internal/events/nftables"
	"github.com/imdsmend/imdsmend/internal/events/proxyfiles"
	"github.com/imdsmend/imdsmend/internal/events/routes"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/report"
	"github.com/imdsmend/imdsmend/rules"
	"github.com/spf13/cobra"
)

// stopTimeout bounds how long watch waits for a cancelled pass on SIGTERM; the units'
// TimeoutStopSec leaves room for it.
const stopTimeout = 5 * time.Second

func newWatchCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "watch",
		Short: "Long-running: apply at start, on every relevant change, and at the policy's interval (systemd Type=notify)",
		Long: `watch applies the policy at start, then again whenever something that can block IMDS
changes (routes and addresses, nftables and iptables-nft rules, legacy iptables tables,
the proxy configuration files), re-reading only the facts the change touched, and at the
policy's settings.interval (with ±10% jitter) in any case. It writes a journal entry
when a finding opens, changes or closes and for every action, not for every pass. Under systemd it sends READY=1 after the first
pass, STATUS= after every pass and WATCHDOG=1 at half of WatchdogSec. SIGHUP reloads the
policy (a policy with errors is rejected and the old one kept); SIGTERM stops it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			e, err := g.loadEngine(cmd)
			if err != nil {
				return err
			}
			metricsFile, err := g.metricsPath()
			if err != nil {
				return err
			}
			obs := &watchObserver{
				journal: report.NewJournal(cmd.ErrOrStderr()), notify: report.NewNotifier(),
				stderr: cmd.ErrOrStderr(), metricsFile: metricsFile, root: paths.New(g.root), policy: g.policy,
			}
			triggers := make(chan engine.Trigger)
			events.Start(cmd.Context(), eventSources(e.Paths), events.DefaultDebounce, triggers, func(source string, err error) {
				obs.journal.Write([]report.Entry{report.SourceFailedEntry(source, err, e.Policy.Settings.Interval)})
			})
			w := &engine.Watch{
				Engine:           e,
				Triggers:         triggers,
				Load:             func() (*engine.Engine, hcl.Diagnostics) { return engine.New(g.engineOptions(cmd)) },
				Reload:           hup,
				Observer:         obs,
				PassTimeout:      g.timeout,
				StopTimeout:      stopTimeout,
				WatchdogInterval: report.WatchdogInterval(),
			}
			return w.Run(cmd.Context())
		},
	}
}

// eventSources are the changes that start a pass: each names the facts it touches.
func eventSources(p paths.Paths) []events.Source {
	return []events.Source{routes.Source{}, nftables.Source{}, iptlegacy.Source{}, proxyfiles.Source{Paths: p}}
}

// watchObserver turns the loop's events into journal entries (transitions only), the
// metrics file and sd_notify messages.
type watchObserver struct {
	journal     *report.Journal
	notify      *report.Notifier
	tracker     report.Tracker
	stderr      io.Writer
	metricsFile string
	root        paths.Paths // --root, where metricsFile is
	policy      string

	ready   bool
	lastFix time.Time
	status  string // the last pass's status line
	problem string // appended to the status until the next good pass or reload
	lastErr string // the last sd_notify or metrics error, written once
}

func (o *watchObserver) Pass(rep *report.Report, t engine.Trigger, err error) {
	now := time.Now()
	if err != nil {
		o.journal.Write([]report.Entry{report.PassFailedEntry(err, t.Source)})
		o.problem = "last pass failed: " + err.Error()
	} else {
		o.journal.Write(o.tracker.Entries(rep, t.Source))
		if report.Applied(rep) > 0 {
			o.lastFix = now
		}
		o.status, o.problem = report.WatchStatusLine(rep, o.lastFix, now), ""
		if o.metricsFile != "" {
			o.warn(report.WriteMetrics(o.root, o.metricsFile, rep, now))
		}
	}
	if !o.ready {
		o.ready = true
		o.warn(o.notify.Ready(o.statusLine()))
		return
	}
	o.warn(o.notify.Status(o.statusLine()))
}

func (o *watchObserver) Reloading() { o.warn(o.notify.Reloading()) }

func (o *watchObserver) Reloaded(e *engine.Engine, _ hcl.Diagnostics) {
	o.journal.Write([]report.Entry{report.PolicyReloadedEntry(o.policy, len(e.Policy.Rules), e.Policy.Settings.Interval)})
	o.problem = ""
	o.warn(o.notify.Ready(o.statusLine()))
}

func (o *watchObserver) ReloadRejected(_ map[string]*hcl.File, diags hcl.Diagnostics) {
	var problems []string
	for _, d := range diags.Errs() {
		var hd *hcl.Diagnostic
		if de, ok := d.(*hcl.Diagnostic); ok {
			hd = de
		} else {
			hd = &hcl.Diagnostic{Summary: d.Error()}
		}
		problems = append(problems, rules.FormatDiagnostic(hd))
	}
	o.journal.Write([]report.Entry{report.PolicyRejectedEntry(o.policy, problems)})
	o.problem = "policy reload rejected (kept the previous policy; see imdsmend validate)"
	o.warn(o.notify.Ready(o.statusLine()))
}

func (o *watchObserver) Watchdog() { o.warn(o.notify.Watchdog()) }

func (o *watchObserver) Stopping() { o.warn(o.notify.Stopping("stopping")) }

func (o *watchObserver) statusLine() string {
	s := o.status
	if s == "" {
		s = "starting"
	}
	if o.problem != "" {
		s += "; " + o.problem
	}
	return s
}

// warn writes a problem with the side channels (sd_notify, metrics file) once: the loop
// goes on without them.
func (o *watchObserver) warn(err error) {
	if err == nil || err.Error() == o.lastErr {
		return
	}
	o.lastErr = err.Error()
	fmt.Fprintf(o.stderr, "imdsmend: %v\n", err)
}
