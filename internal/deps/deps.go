//go:build tools

// Package deps pins the module's dependencies while the packages that use
// them are written; it is never built.
package deps
import (
 _ "github.com/prometheus/procfs"
 _ "github.com/opencontainers/cgroups"
 _ "github.com/opencontainers/cgroups/fs"
 _ "github.com/opencontainers/cgroups/fs2"
 _ "gonum.org/v1/gonum/stat"
 _ "gonum.org/v1/gonum/optimize/convex/lp"
 _ "github.com/hashicorp/go-multierror"
 _ "github.com/google/go-cmp/cmp"
 _ "github.com/stretchr/testify/require"
 _ "github.com/cloudevents/sdk-go/v2"
 _ "go.etcd.io/etcd/client/v3"
 _ "go.etcd.io/etcd/server/v3/embed"
 _ "github.com/klauspost/compress/zstd"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "github.com/cloudflare/tableflip"
 _ "golang.org/x/time/rate"
)
