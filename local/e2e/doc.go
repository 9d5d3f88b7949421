// Package e2e holds the end-to-end tests: the whole stack of template.yaml started by local/stack, driven
// through its local HTTP API with the real bootstraps, on DynamoDB Local and fauxqs.
package e2e
