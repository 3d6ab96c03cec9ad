package remediate

import (
	"context"
	"strings"
	"testing"
)

// TestRouteRestorePlanNeedsInterface: without a default route the primary interface is
// unknown, and the fixer says how to name it instead of guessing. (Planning against real
// routes is tested end to end, in namespaces.)
func TestRouteRestorePlanNeedsInterface(t *testing.T) {
	args := decodeArgs(t, RouteRestore{}.Spec(), `interface = ""`)
	_, err := RouteRestore{}.Plan(context.Background(), &Env{}, args)
	if err == nil || !strings.Contains(err.Error(), `name it with interface = "ens5"`) {
		t.Errorf("error = %v", err)
	}
}
