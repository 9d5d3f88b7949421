// Package vulndb builds govulncheck's offline vulnerability database, in the Go vulnerability
// database's "v1" layout, from the OSV entries that the golang.org/x/vulndb module ships.
package vulndb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Module is the module whose data/osv folder holds one OSV entry (GO-YYYY-NNNN.json) per report.
const Module = "golang.org/x/vulndb"

// entry holds the fields of an OSV entry that the indexes need; the entry itself is copied as is.
type entry struct {
	ID       string          `json:"id"`
	Modified json.RawMessage `json:"modified"`
	Aliases  []string        `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string          `json:"id"`
	Modified json.RawMessage `json:"modified"`
}

type module struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vuln struct {
	ID       string          `json:"id"`
	Modified json.RawMessage `json:"modified"`
	Aliases  []string        `json:"aliases,omitempty"`
}

// Build writes the database of the OSV entries in osvDir to dir: index/db.json (the newest
// modification), index/modules.json (each module's vulnerabilities), index/vulns.json (each
// vulnerability's aliases) and ID/<id>.json (the entry). The optional "fixed" field of
// modules.json is left out: govulncheck then reads every entry of a module it finds and decides
// from the entry's ranges, as it does for a version below "fixed".
func Build(osvDir, dir string) error {
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no OSV entries (*.json) in %s", osvDir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "ID"), 0o755); err != nil {
		return err
	}
	var (
		newest     time.Time
		newestRaw  json.RawMessage
		vulns      []vuln
		modules    = map[string]*module{}
		seen       = map[string]bool{}
		moduleList []*module
	)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var e entry
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		var mod time.Time
		if err := json.Unmarshal(e.Modified, &mod); err != nil || e.ID == "" || strings.ContainsAny(e.ID, `/\`) {
			return fmt.Errorf("%s: not an OSV entry (id %q, modified %s)", f, e.ID, e.Modified)
		}
		if seen[e.ID] {
			return fmt.Errorf("%s: id %s appears twice", f, e.ID)
		}
		seen[e.ID] = true
		if newestRaw == nil || mod.After(newest) {
			newest, newestRaw = mod, e.Modified
		}
		vulns = append(vulns, vuln{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			m := modules[a.Package.Name]
			if m == nil {
				m = &module{Path: a.Package.Name}
				modules[m.Path] = m
				moduleList = append(moduleList, m)
			}
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
		if err := os.WriteFile(filepath.Join(dir, "ID", e.ID+".json"), raw, 0o644); err != nil {
			return err
		}
	}
	slices.SortFunc(vulns, func(a, b vuln) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(moduleList, func(a, b *module) int { return strings.Compare(a.Path, b.Path) })
	for _, m := range moduleList {
		slices.SortStableFunc(m.Vulns, func(a, b moduleVuln) int { return strings.Compare(a.ID, b.ID) })
	}
	if err := os.MkdirAll(filepath.Join(dir, "index"), 0o755); err != nil {
		return err
	}
	return errors.Join(
		writeJSON(filepath.Join(dir, "index", "db.json"), map[string]json.RawMessage{"modified": newestRaw}),
		writeJSON(filepath.Join(dir, "index", "modules.json"), moduleList),
		writeJSON(filepath.Join(dir, "index", "vulns.json"), vulns),
	)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// Update makes dir the database of version (a version of Module, or a query such as "latest").
// The go command downloads the module through the module proxy; dir/VERSION names the version
// built, and a database already built for it is kept. It returns the version and whether it built.
func Update(ctx context.Context, version, dir string) (string, bool, error) {
	// Outside any module, so the download leaves go.mod and go.sum alone.
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", Module+"@"+version)
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var got struct{ Version, Dir, Error string }
	if err := json.Unmarshal(out, &got); err != nil || got.Error != "" || runErr != nil {
		return "", false, fmt.Errorf("go mod download %s@%s: %s%s %v", Module, version, got.Error, stderr.Bytes(), runErr)
	}
	if have, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil && strings.TrimSpace(string(have)) == got.Version {
		return got.Version, false, nil
	}
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return "", false, err
	}
	if err := Build(filepath.Join(got.Dir, "data", "osv"), tmp); err != nil {
		os.RemoveAll(tmp)
		return "", false, fmt.Errorf("build the database of %s@%s: %w", Module, got.Version, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "VERSION"), []byte(got.Version+"\n"), 0o644); err != nil {
		return "", false, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", false, err
	}
	return got.Version, true, os.Rename(tmp, dir)
}
