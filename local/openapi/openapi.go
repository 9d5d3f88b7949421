// Package openapi holds openapi.yaml's tooling: JSON converts it to the JSON that GET /openapi.json
// serves (make openapi writes it), and its tests keep the document and template.yaml's routes in
// step and check that it is valid OpenAPI 3.1. The end-to-end tests (local/e2e) validate their
// requests and responses against the same document.
package openapi

import (
	"bytes"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// ServedPath is where the JSON form is embedded (shared/widget/static serves it), relative to the
// repository root.
const ServedPath = "shared/widget/static/files/openapi.json"

// JSON converts the YAML document to indented JSON with sorted keys: the same YAML always yields the
// same bytes, so a test can tell whether the served file is current.
func JSON(doc []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode openapi.json: %w", err)
	}
	return buf.Bytes(), nil
}
