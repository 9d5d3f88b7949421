// Package e2e holds the end-to-end tests: the whole stack of template.yaml started by local/stack,
// driven through its local HTTP API with the real bootstraps, on DynamoDB Local and fauxqs.
package e2e

// Every test is parallel. Tests that share one stack's default workspace (its sources, counts and
// limits) call inLane first and run one at a time in that stack's lane; the lanes run side by side,
// and so do the tests with a stack of their own (the burst also with its own DynamoDB Local) or a
// workspace of their own on the live stack.
// make test runs this package with -parallel 96, so that a test waiting for its lane holds no slot
// another lane could use: the tests mostly wait on retries and polls, not on the two cores.
