package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
)

// withEmulators starts one DynamoDB Local, one fauxqs and one local-kms, runs the command with
// their endpoints in emulatortest's HOOKGATE_TEST_*_ENDPOINT variables (so that every test binary
// it starts uses them instead of starting its own), stops them and returns the command's failure.
// make test's race run uses it: one JVM warmed once instead of one per package.
func withEmulators(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return errors.New("usage: hookgate-local with-emulators -- command [args]")
	}
	root, err := os.Getwd()
	if err == nil {
		root, err = emulator.FindRoot(root)
	}
	if err != nil {
		return err
	}
	var procs []*emulator.Process
	defer func() {
		for _, p := range procs {
			_ = p.Stop()
		}
	}()
	starts := []struct {
		env   string
		start func() (*emulator.Process, error)
	}{
		{emulatortest.EnvDynamoEndpoint, func() (*emulator.Process, error) {
			return emulator.StartDynamo(ctx, emulator.DynamoOptions{Root: root})
		}},
		{emulatortest.EnvSQSEndpoint, func() (*emulator.Process, error) { return emulator.StartSQS(ctx, emulator.SQSOptions{Root: root}) }},
		{emulatortest.EnvKMSEndpoint, func() (*emulator.Process, error) { return emulator.StartKMS(ctx, emulator.KMSOptions{Root: root}) }},
	}
	env := os.Environ()
	for _, s := range starts {
		p, err := s.start()
		if err != nil {
			return err
		}
		procs = append(procs, p)
		env = append(env, s.env+"="+p.Endpoint)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdin, os.Stdout, os.Stderr, env
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}
