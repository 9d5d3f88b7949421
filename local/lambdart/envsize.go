package lambdart

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxEnvBytes is Lambda's limit on a function's environment variables: 4 KB in all, measured as
// the JSON object of Environment.Variables ({"KEY":"value",…}, keys and values with their quotes
// and escapes), the "String measured" Lambda's refusal quotes. A function over it cannot deploy:
// CreateFunction and UpdateFunctionConfiguration fail with InvalidParameterValueException.
const MaxEnvBytes = 4096

// EnvSize is the size Lambda measures of a function's environment variables.
func EnvSize(vars map[string]string) int {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(vars) // a map of strings always encodes
	return b.Len() - 1   // Encode adds a newline
}

// CheckEnvSize refuses a function whose environment variables Lambda would refuse.
func CheckEnvSize(function string, vars map[string]string) error {
	if n := EnvSize(vars); n > MaxEnvBytes {
		return fmt.Errorf("function %s: its environment variables are %d bytes (the JSON of Environment.Variables, as Lambda measures them), over Lambda's 4 KB limit of %d bytes: its deploy would fail", function, n, MaxEnvBytes)
	}
	return nil
}
