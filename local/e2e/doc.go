// Package e2e holds the end-to-end tests: the whole stack of template.yaml started by local/stack,
// driven through its local HTTP API with the real bootstraps, on DynamoDB Local and fauxqs.
package e2e

// Tests on the shared stack (sharedStack) run one after another, as they share the default
// workspace and its queues. A test calls t.Parallel only when no other parallel test can disturb
// it: it starts its own stack (the burst also its own DynamoDB Local), or uses the live stack
// with a workspace of its own, or is the one parallel test on the shared stack (the poison message).
// make test runs this package with -parallel 8: the parallel tests mostly wait on retries and polls.
