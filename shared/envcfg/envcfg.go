// Package envcfg reads a function's HOOKGATE_* configuration from the environment in one place and
// reports every problem at once.
package envcfg

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Reader reads variables and collects the problems it meets.
type Reader struct {
	getenv func(string) string
	errs   []error
}

// New returns a Reader over getenv (os.Getenv in main, a map in tests).
func New(getenv func(string) string) *Reader { return &Reader{getenv: getenv} }

// Required returns the variable, noting a problem when it is unset or blank.
func (r *Reader) Required(name string) string {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		r.errs = append(r.errs, fmt.Errorf("%s is required", name))
	}
	return v
}

// Secret returns a required secret, noting a problem when it is unset or shorter than minLen.
// The problem names the variable, never the value.
func (r *Reader) Secret(name string, minLen int) string {
	v := r.Required(name)
	if v != "" && len(v) < minLen {
		r.errs = append(r.errs, fmt.Errorf("%s must be at least %d characters", name, minLen))
	}
	return v
}

// OptionalSecret returns the variable, "" when it is unset or blank; a value shorter than minLen
// is an error (which does not quote it).
func (r *Reader) OptionalSecret(name string, minLen int) string {
	v := r.Optional(name, "")
	if v != "" && len(v) < minLen {
		r.errs = append(r.errs, fmt.Errorf("%s must be at least %d characters", name, minLen))
	}
	return v
}

// Optional returns the variable, or def when it is unset or blank.
func (r *Reader) Optional(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

// Int returns the variable as an integer in [lo, hi], or def when it is unset.
func (r *Reader) Int(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < lo || i > hi {
		r.errs = append(r.errs, fmt.Errorf("%s must be an integer from %d to %d", name, lo, hi))
		return def
	}
	return i
}

// Bool returns the variable as a boolean (true/false/1/0), or def when it is unset.
func (r *Reader) Bool(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s must be true or false", name))
		return def
	}
	return b
}

// List returns the comma-separated variable as trimmed, non-empty items, or def when unset.
func (r *Reader) List(name string, def ...string) []string {
	v := r.getenv(name)
	if strings.TrimSpace(v) == "" {
		return def
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// Err returns every problem met so far, joined, or nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
