package vulndb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeEntries(t *testing.T, entries map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range entries {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The indexes are those of the vulndb module's own indexdb (less the optional "fixed"), sorted by
// module path and id; each entry is copied byte for byte under its id.
func TestBuildWritesTheV1Layout(t *testing.T) {
	stdlib := `{"id":"GO-2026-0002","modified":"2026-03-01T10:00:00Z","aliases":["CVE-2026-2"],` +
		`"affected":[{"package":{"name":"stdlib","ecosystem":"Go"}},{"package":{"name":"toolchain","ecosystem":"Go"}}]}`
	osv := writeEntries(t, map[string]string{
		"GO-2026-0002.json": stdlib,
		"GO-2025-0001.json": `{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z",` +
			`"affected":[{"package":{"name":"example.com/m"}},{"package":{"name":"stdlib"}}]}`,
		"README.md": "not an entry",
	})
	out := filepath.Join(t.TempDir(), "db")
	if err := Build(osv, out); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"index/db.json": `{"modified":"2026-03-01T10:00:00Z"}`,
		"index/modules.json": `[{"path":"example.com/m","vulns":[{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z"}]},` +
			`{"path":"stdlib","vulns":[{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z"},{"id":"GO-2026-0002","modified":"2026-03-01T10:00:00Z"}]},` +
			`{"path":"toolchain","vulns":[{"id":"GO-2026-0002","modified":"2026-03-01T10:00:00Z"}]}]`,
		"index/vulns.json": `[{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z"},` +
			`{"id":"GO-2026-0002","modified":"2026-03-01T10:00:00Z","aliases":["CVE-2026-2"]}]`,
		"ID/GO-2026-0002.json": stdlib,
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != w {
			t.Errorf("%s = %s (%v)\nwant %s", name, got, err, w)
		}
	}
}

func TestBuildRefusesWhatIsNoDatabase(t *testing.T) {
	for name, entries := range map[string]map[string]string{
		"no entries": {"README.md": "x"},
		"not JSON":   {"a.json": "{"},
		"no id":      {"a.json": `{"modified":"2025-01-01T00:00:00Z"}`},
		"a path id":  {"a.json": `{"id":"../x","modified":"2025-01-01T00:00:00Z"}`},
		"twice": {
			"a.json": `{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z"}`,
			"b.json": `{"id":"GO-2025-0001","modified":"2025-01-01T00:00:00Z"}`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := Build(writeEntries(t, entries), t.TempDir())
			if err == nil || strings.Contains(err.Error(), "%!") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
