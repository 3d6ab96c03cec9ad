package remediate

import (
	"context"
	"testing"
)

// TestRestartUnitUndoSaysWhatItDid: undoing a restart says that nothing can be reverted
// instead of repeating the restart it "reverts".
func TestRestartUnitUndoSaysWhatItDid(t *testing.T) {
	c := &Change{Target: "docker.service", Detail: "systemctl daemon-reload && systemctl try-restart docker.service: …"}
	if err := (RestartUnit{}).Undo(context.Background(), &Env{}, c); err != nil {
		t.Fatal(err)
	}
	const want = "nothing to revert: a restart can't be taken back; docker.service keeps running with its current environment until its next restart"
	if c.Detail != want {
		t.Errorf("Detail = %q, want %q", c.Detail, want)
	}
}
