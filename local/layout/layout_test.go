package layout

import (
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hookgate/hookgate"

// localImports returns the imports of local/ packages by the (non-test) Go files of every package
// under the given folders of root, as "dir imports path". Test files may use local/ (tests start
// emulators through it); what is built into a bootstrap may not.
func localImports(t *testing.T, root string, folders ...string) (found []string, packages int) {
	t.Helper()
	for _, folder := range folders {
		err := filepath.WalkDir(filepath.Join(root, folder), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			pkg, err := build.ImportDir(path, 0)
			if err != nil {
				if _, ok := err.(*build.NoGoError); ok {
					return nil
				}
				return err
			}
			packages++
			for _, imp := range pkg.Imports {
				if imp == module+"/local" || strings.HasPrefix(imp, module+"/local/") {
					rel, _ := filepath.Rel(root, path)
					found = append(found, rel+" imports "+imp)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", folder, err)
		}
	}
	return found, packages
}

func TestDeployedCodeNeverImportsTheLocalTree(t *testing.T) {
	found, packages := localImports(t, "../..", "functions", "shared")
	if packages < 30 {
		t.Fatalf("checked only %d packages under functions/ and shared/: the walk is broken", packages)
	}
	if len(found) > 0 {
		t.Fatalf("deployed code imports local tooling:\n%s", strings.Join(found, "\n"))
	}
}

// The check itself catches a function that imports the local tree (and ignores a test file that does).
func TestBoundaryCheckCatchesAFunctionImportingLocal(t *testing.T) {
	root := t.TempDir()
	fn := filepath.Join(root, "functions", "sneaky")
	if err := os.MkdirAll(fn, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(fn, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", "package main\n\nimport _ \""+module+"/local/stack\"\n\nfunc main() {}\n")
	write("main_test.go", "package main\n\nimport _ \""+module+"/local/emulator\"\n")
	found, _ := localImports(t, root, "functions")
	if want := []string{filepath.Join("functions", "sneaky") + " imports " + module + "/local/stack"}; !slices.Equal(found, want) {
		t.Fatalf("found %q, want %q", found, want)
	}
}
