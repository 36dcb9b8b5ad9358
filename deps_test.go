package updraft_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRootLinksNoCloudEventsSDK: a host that imports only the root package
// and hal/sim (one that never migrates through CloudEvents) links neither
// the CloudEvents SDK nor zap nor json-iterator: the Orchestrator depends
// on migration through an interface, and package migrate keeps its
// CloudEvents parts in a sub-package.
func TestRootLinksNoCloudEventsSDK(t *testing.T) {
	goTool, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to list what a program links")
	out, err := exec.Command(goTool, "list", "-deps", "github.com/updraft-dev/updraft", "github.com/updraft-dev/updraft/hal/sim").CombinedOutput()
	require.NoError(t, err, string(out))
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/updraft-dev/updraft/migrate", "the listing is of the root package's dependencies")
	for _, dep := range deps {
		for _, heavy := range []string{"github.com/cloudevents/sdk-go", "go.uber.org/zap", "github.com/json-iterator/go"} {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("a program importing only the root package and hal/sim links %s", dep)
			}
		}
	}
}
