// Command gen writes openapi.yaml's JSON form to the file GET /openapi.json serves (make openapi).
// Run it from the repository root.
package main

import (
	"fmt"
	"os"

	"github.com/hookgate/hookgate/local/openapi"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "openapi:", err)
		os.Exit(1)
	}
}

func run() error {
	doc, err := os.ReadFile("openapi.yaml")
	if err != nil {
		return err
	}
	out, err := openapi.JSON(doc)
	if err != nil {
		return err
	}
	return os.WriteFile(openapi.ServedPath, out, 0o644)
}
