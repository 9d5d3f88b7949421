package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The values of `make dev`: a command with no configuration talks to the local gateway.
const (
	DefaultAPI           = "http://127.0.0.1:3000"
	DefaultAPIKey        = "dev-admin-api-key"
	DefaultInboundSecret = "dev-inbound-secret"
	DefaultWorkspace     = "default"
)

// Config is where the commands send their requests and with which credentials.
type Config struct {
	API           string `json:"api"`
	APIKey        string `json:"api_key"`
	InboundSecret string `json:"inbound_secret"`
	Workspace     string `json:"workspace"`
}

// configFlags are the global flags; empty means not given.
type configFlags struct {
	api, apiKey, profile, file, workspace string
}

// resolve builds the configuration: flags first, then HOOKGATE_API / HOOKGATE_API_KEY /
// HOOKGATE_INBOUND_SECRET / HOOKGATE_WORKSPACE, then the profile of the config file
// (--config, HOOKGATE_CONFIG, else $XDG_CONFIG_HOME/hookgate/config.json or
// ~/.config/hookgate/config.json; --profile or HOOKGATE_PROFILE, else "default"), then make dev's values.
func resolve(f configFlags, getenv func(string) string) (Config, error) {
	var file Config
	path, explicit := f.file, f.file != ""
	if path == "" {
		path, explicit = getenv("HOOKGATE_CONFIG"), getenv("HOOKGATE_CONFIG") != ""
	}
	if path == "" {
		dir := getenv("XDG_CONFIG_HOME")
		if dir == "" {
			if home := getenv("HOME"); home != "" {
				dir = filepath.Join(home, ".config")
			}
		}
		if dir != "" {
			path = filepath.Join(dir, "hookgate", "config.json")
		}
	}
	profile := first(f.profile, getenv("HOOKGATE_PROFILE"))
	if path != "" {
		raw, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && !explicit:
			if profile != "" && profile != "default" {
				return Config{}, fmt.Errorf("profile %q: no config file at %s", profile, path)
			}
		case err != nil:
			return Config{}, fmt.Errorf("read the config file: %w", err)
		default:
			var profiles map[string]Config
			if err := json.Unmarshal(raw, &profiles); err != nil {
				return Config{}, fmt.Errorf("config file %s: want {\"<profile>\": {\"api\", \"api_key\", \"inbound_secret\", \"workspace\"}}: %w", path, err)
			}
			p, ok := profiles[first(profile, "default")]
			if !ok && profile != "" && profile != "default" {
				return Config{}, fmt.Errorf("config file %s has no profile %q", path, profile)
			}
			file = p
		}
	}
	return Config{
		API:           first(f.api, getenv("HOOKGATE_API"), file.API, DefaultAPI),
		APIKey:        first(f.apiKey, getenv("HOOKGATE_API_KEY"), file.APIKey, DefaultAPIKey),
		InboundSecret: first(getenv("HOOKGATE_INBOUND_SECRET"), file.InboundSecret, DefaultInboundSecret),
		Workspace:     first(f.workspace, getenv("HOOKGATE_WORKSPACE"), file.Workspace, DefaultWorkspace),
	}, nil
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
