// Package remediate holds one fixer per action kind, the registry that knows them, the
// ledger that records every change before and after it is made, and the executor that
// plans, applies and undoes changes.
package remediate

import (
	"context"
	"encoding/json"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/imdsmend/imdsmend/facts"
	"github.com/imdsmend/imdsmend/internal/paths"
	"github.com/imdsmend/imdsmend/internal/types"
	"github.com/zclconf/go-cty/cty"
)

// Env is what fixers may touch: paths (under --root) and the facts of this run.
type Env struct {
	Paths paths.Paths
	Facts *facts.Facts
	// IPv6 is settings.ipv6: fixers include the IPv6 endpoint where it matters.
	IPv6 bool
	// Allow reports whether the policy grants a permission (settings.allow); fixers that
	// have optional side effects (restarting units) ask it.
	Allow func(perm types.Permission) bool
	// RestartUnits is settings.allow.restart_units given as a list of unit globs; nil
	// when it is a bool (true: only units whose own unit file or drop-in sets the proxy).
	RestartUnits []string
}

// Change is one concrete change a fixer plans, applies or undoes.
type Change struct {
	ID     string       `json:"id"`
	Rule   string       `json:"rule"`
	Kind   string       `json:"kind"`
	Target string       `json:"target"`
	Detail string       `json:"detail"`
	Status types.Status `json:"status"`
	Error  string       `json:"error,omitempty"`
	// Data is the fixer's own record of what to do and how to undo it.
	Data json.RawMessage `json:"data,omitempty"`
	// Before is the fixer's record of the system just before the change (Snapshotter),
	// kept in the intent so an interrupted change can be judged and undone.
	Before json.RawMessage `json:"before,omitempty"`
	// Interrupted names the run that stopped (a crash, a full disk) between this change
	// and its result; set when a later run reconciles it.
	Interrupted string `json:"interrupted,omitempty"`
}

// Fixer handles one remediation kind.
type Fixer interface {
	// Kind is the label of `remediate "KIND"` blocks.
	Kind() string
	// Doc is one line for --help and docs.
	Doc() string
	// Permission names the settings.allow switch this fixer needs (types.Perm*).
	Permission() types.Permission
	// Spec is the schema of the remediate block's body.
	Spec() hcldec.Spec
	// Plan turns the evaluated block into the changes needed now. It reads, never writes,
	// and returns no change for what is already in the desired state.
	Plan(ctx context.Context, env *Env, args cty.Value) ([]*Change, error)
	// Apply makes one planned change. If the system is already as wanted it sets
	// types.StatusUnchanged; otherwise types.StatusApplied and records in Data what Undo needs. An
	// error means nothing was changed; a change made in part returns nil with Error set,
	// so the ledger records it as applied and undo can revert that part.
	Apply(ctx context.Context, env *Env, c *Change) error
	// Undo reverts an applied change from its ledger record and sets c.Detail to what it
	// did (the inverse operation, or why nothing was needed).
	Undo(ctx context.Context, env *Env, c *Change) error
	// Observe reports whether c's change is in effect on the system now. c is a ledger
	// record: an intent whose result was never written (the run stopped between them), or
	// an applied change about to be undone. It reads, never writes; it may complete c.Data
	// with what Undo needs, as Apply would have.
	Observe(ctx context.Context, env *Env, c *Change) (applied bool, err error)
}

// Snapshotter is a fixer that records in c.Before, just before the intent is written,
// what Observe and Undo need to know about the system before the change.
type Snapshotter interface {
	Snapshot(ctx context.Context, env *Env, c *Change) error
}
