package e2e_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

type sqstypesName = sqstypes.QueueAttributeName

// hmacHex is the test's own HMAC-SHA256, independent of the verify package.
func hmacHex(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
