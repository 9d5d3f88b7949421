package layout

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hookgate/hookgate"

// deployDeps lists, as the bootstraps are built (linux/arm64, -tags lambda.norpc, no test files),
// every package of this module that the functions under dir link in.
func deployDeps(t *testing.T, dir string) []string {
	t.Helper()
	return moduleDeps(t, dir, "-tags", "lambda.norpc", "./functions/...")
}

// cliDeps lists every package of this module the command line (cmd/, cli/) links in.
func cliDeps(t *testing.T, dir string) []string {
	t.Helper()
	return moduleDeps(t, dir, "./cmd/...", "./cli/...")
}

func moduleDeps(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var deps []string
	for _, p := range strings.Fields(string(out)) {
		if p == module || strings.HasPrefix(p, module+"/") {
			deps = append(deps, strings.TrimPrefix(p, module+"/"))
		}
	}
	return deps
}

// check returns what breaks the layout rule: a function linking in local/ or the command line
// (cli/), a shared/ package no function links in (shared/ holds only what deploys; test helpers
// belong under local/), or the command line linking in local/ (it is a product, installed with
// go install, not a test helper).
func check(deps, sharedPkgs, cli []string) []string {
	var problems []string
	for _, d := range deps {
		if under(d, "local") || under(d, "cli") {
			problems = append(problems, "a function links in "+d)
		}
	}
	for _, d := range cli {
		if under(d, "local") {
			problems = append(problems, "the command line links in "+d)
		}
	}
	for _, p := range sharedPkgs {
		if !slices.Contains(deps, p) {
			problems = append(problems, p+" is in shared/ but no function links it in")
		}
	}
	return problems
}

func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

// sharedPackages lists the folders under dir/shared that hold non-test Go files.
func sharedPackages(t *testing.T, dir string) []string {
	t.Helper()
	var pkgs []string
	err := filepath.WalkDir(filepath.Join(dir, "shared"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		rel, _ := filepath.Rel(dir, filepath.Dir(path))
		if !slices.Contains(pkgs, filepath.ToSlash(rel)) && !strings.Contains(rel, "testdata") {
			pkgs = append(pkgs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func TestDeployedCodeNeverImportsTheLocalTree(t *testing.T) {
	deps := deployDeps(t, "../..")
	pkgs := sharedPackages(t, "../..")
	if len(pkgs) < 20 || len(deps) < len(pkgs) {
		t.Fatalf("found %d shared packages and %d deployed ones: the listing is broken", len(pkgs), len(deps))
	}
	cli := cliDeps(t, "../..")
	if !slices.Contains(cli, "cmd/hookgate") || !slices.Contains(cli, "cli") {
		t.Fatalf("the command line's packages %q lack cmd/hookgate or cli: the listing is broken", cli)
	}
	if problems := check(deps, pkgs, cli); len(problems) > 0 {
		t.Fatalf("the layout rule is broken:\n%s", strings.Join(problems, "\n"))
	}
}

// The check catches a function that links in local/ (also through a file only the deploy build
// sees) or cli/, a shared package nothing deploys, and a command line linking in local/; a test
// file importing local/ is allowed.
func TestBoundaryCheckCatchesAFunctionImportingLocal(t *testing.T) {
	root := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+module+"\n\ngo 1.22\n")
	write("functions/sneaky/main.go", "package main\n\nimport _ \""+module+"/shared/used\"\n\nfunc main() {}\n")
	write("functions/sneaky/deploy.go", "//go:build lambda.norpc && arm64\n\npackage main\n\nimport _ \""+module+"/local/stack\"\n")
	write("functions/sneaky/main_test.go", "package main\n\nimport _ \""+module+"/local/emulator\"\n")
	write("functions/chatty/main.go", "package main\n\nimport _ \""+module+"/cli\"\n\nfunc main() {}\n")
	write("cli/cli.go", "package cli\n\nimport _ \""+module+"/local/stack\"\n")
	write("cli/cli_test.go", "package cli\n\nimport _ \""+module+"/local/emulator\"\n")
	write("cmd/hookgate/main.go", "package main\n\nimport _ \""+module+"/cli\"\n\nfunc main() {}\n")
	write("shared/used/used.go", "package used\n")
	write("shared/unused/unused.go", "package unused\n")
	write("local/stack/stack.go", "package stack\n")
	write("local/emulator/emulator.go", "package emulator\n")
	got := check(deployDeps(t, root), sharedPackages(t, root), cliDeps(t, root))
	want := []string{"a function links in local/stack", "a function links in cli", "the command line links in local/stack",
		"shared/unused is in shared/ but no function links it in"}
	if !slices.Equal(got, want) {
		t.Fatalf("problems %q, want %q", got, want)
	}
}
