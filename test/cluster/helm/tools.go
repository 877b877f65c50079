//go:build tools

// Package tools records the command build.sh compiles, so `go mod tidy` keeps its requirements.
package tools

import (
	_ "helm.sh/helm/v4/cmd/helm"
)
