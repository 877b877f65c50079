//go:build tools

// Pins ghz in this module's graph (go.mod/go.sum), so build.sh builds the same ghz everywhere.
package tools

import _ "github.com/bojand/ghz/cmd/ghz"
