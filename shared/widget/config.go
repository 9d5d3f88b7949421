package widget

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hookgate/hookgate/shared/envcfg"
	"github.com/hookgate/hookgate/shared/verify"
)

// minKeyLen is the shortest signing key accepted.
const minKeyLen = 16

// ConfigFromEnv reads the widget's configuration: HOOKGATE_DEFAULT_WORKSPACE,
// HOOKGATE_WIDGET_SIGNING_KEY (comma-separated during a rotation: the first signs, all verify),
// HOOKGATE_WIDGET_ALLOWED_ORIGINS (comma-separated exact origins; none means no site may open a
// session) and HOOKGATE_WIDGET_SESSION_MINUTES. Every problem is reported; no key is quoted.
func ConfigFromEnv(env *envcfg.Reader) (Config, error) {
	cfg := Config{
		Workspace:  env.Required("HOOKGATE_DEFAULT_WORKSPACE"),
		SessionTTL: time.Duration(env.Int("HOOKGATE_WIDGET_SESSION_MINUTES", 60, 5, 1440)) * time.Minute,
	}
	var errs []error
	keys := env.List("HOOKGATE_WIDGET_SIGNING_KEY")
	if len(keys) == 0 {
		errs = append(errs, errors.New("HOOKGATE_WIDGET_SIGNING_KEY is required"))
	}
	for i, k := range keys {
		if len(k) < minKeyLen {
			errs = append(errs, fmt.Errorf("HOOKGATE_WIDGET_SIGNING_KEY: key %d is shorter than %d characters", i+1, minKeyLen))
		}
	}
	cfg.Keys = verify.NewSecrets(keys...)
	origins, err := ParseOrigins(env.List("HOOKGATE_WIDGET_ALLOWED_ORIGINS"))
	if err != nil {
		errs = append(errs, fmt.Errorf("HOOKGATE_WIDGET_ALLOWED_ORIGINS: %w", err))
	}
	cfg.Origins = origins
	if err := errors.Join(append([]error{env.Err()}, errs...)...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// String describes the configuration without its keys.
func (c Config) String() string {
	return fmt.Sprintf("workspace %s, origins [%s], sessions %s", c.Workspace, strings.Join(c.Origins, " "), c.SessionTTL)
}
