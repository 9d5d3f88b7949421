// Package layout checks the repository's one structural rule: what deploys (functions/ and shared/)
// never imports the local stand-in for AWS (local/). It has no code of its own, only its test.
package layout
