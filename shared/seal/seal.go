// Package seal envelope-encrypts the per-tenant secrets Hookgate stores (signing secrets, source
// secrets, bot tokens, agents' and adapters' secrets): AES-256-GCM under a data key from KMS GenerateDataKey, bound to the
// secret's workspace, kind and item, so a sealed value copied anywhere else does not open.
package seal

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// KMS is the part of the KMS client an Envelope uses: GenerateDataKey to seal, Decrypt to open.
// A function that only seals needs kms:GenerateDataKey; one that only opens, kms:Decrypt.
type KMS interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, opts ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, opts ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Context is what a sealed value is bound to. Workspace and Kind go into the KMS encryption context
// (so CloudTrail shows them, and a key policy can condition on them); all three go into the
// AES-GCM additional data, with the wrapped data key (so no byte of a sealed value goes unchecked).
type Context struct {
	Workspace string // the tenant
	Kind      string // the attribute: KindSubscriptionSecret, KindSourceSecret, KindBotToken, ...
	Item      string // the item within the workspace: a subscription id, a source name
}

// Kinds of the secrets Hookgate seals.
const (
	KindSubscriptionSecret = "subscription.secret"
	KindSourceSecret       = "source.secret"
	KindBotToken           = "source.bot_token"
	KindAgentSecret        = "agent.secret"   // a webhook agent's signing secret, an openai agent's API key
	KindAdapterSecret      = "adapter.secret" // an adapter's bearer secrets
	// KindSubscriptionHeaders seals a subscription's custom headers (their values, together).
	KindSubscriptionHeaders = "subscription.headers"
)

// Encryption context keys.
const (
	ContextWorkspace = "hookgate:workspace"
	ContextKind      = "hookgate:kind"
)

// Cache bounds: a data key seals at most MaxUses values and is used for at most MaxAge; an opened
// data key is reused for MaxAge. At most MaxKeys of each are kept per process.
const (
	MaxAge  = 5 * time.Minute
	MaxUses = 1000
	MaxKeys = 1024
)

// version is the first byte of every sealed value.
const version = 1

// ErrOpen is returned, wrapped, by Open for a value that does not open under its context (wrong
// workspace, kind or item, another key, or a damaged value). It carries no detail of the value.
var ErrOpen = errors.New("sealed value does not open")

// Envelope seals and opens values with one KMS key. It is safe for concurrent use; make one per
// process, so that its data-key cache spares a KMS call per webhook.
type Envelope struct {
	kms   KMS
	keyID string
	now   func() time.Time

	mu     sync.Mutex
	sealKs map[string]*sealKey // by workspace and kind
	openKs map[string]*openKey // by workspace, kind and encrypted data key
}

type sealKey struct {
	aead    cipher.AEAD
	wrapped []byte
	born    time.Time
	uses    int
}

type openKey struct {
	aead cipher.AEAD
	born time.Time
}

// New returns an Envelope sealing under keyID (a key id, ARN or alias).
func New(k KMS, keyID string, now func() time.Time) *Envelope {
	return &Envelope{kms: k, keyID: keyID, now: now, sealKs: map[string]*sealKey{}, openKs: map[string]*openKey{}}
}

func (c Context) kmsContext() map[string]string {
	return map[string]string{ContextWorkspace: c.Workspace, ContextKind: c.Kind}
}

// aad is the additional data: the three parts, each length-prefixed, so no two contexts share it.
func (c Context) aad() []byte {
	b := []byte("hookgate/seal/v1")
	for _, p := range []string{c.Workspace, c.Kind, c.Item} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}

func (c Context) valid() error {
	if c.Workspace == "" || c.Kind == "" || c.Item == "" {
		return errors.New("seal: a context needs a workspace, a kind and an item")
	}
	return nil
}

// Seal encrypts plaintext for c. The result is version | len(wrapped key) | wrapped key | nonce |
// ciphertext and tag.
func (e *Envelope) Seal(ctx context.Context, plaintext []byte, c Context) ([]byte, error) {
	if err := c.valid(); err != nil {
		return nil, err
	}
	k, err := e.sealKey(ctx, c)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 3+len(k.wrapped)+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out = append(out, version)
	out = binary.BigEndian.AppendUint16(out, uint16(len(k.wrapped)))
	out = append(out, k.wrapped...)
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, append(c.aad(), k.wrapped...)), nil
}

// sealKey returns the cached data key of c's workspace and kind, or asks KMS for a new one.
func (e *Envelope) sealKey(ctx context.Context, c Context) (*sealKey, error) {
	id := c.Workspace + "\x00" + c.Kind
	now := e.now()
	e.mu.Lock()
	k := e.sealKs[id]
	if k != nil && k.uses < MaxUses && now.Sub(k.born) < MaxAge {
		k.uses++
		e.mu.Unlock()
		return k, nil
	}
	e.mu.Unlock()

	out, err := e.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId: aws.String(e.keyID), KeySpec: types.DataKeySpecAes256, EncryptionContext: c.kmsContext(),
	})
	if err != nil {
		return nil, fmt.Errorf("seal: generate data key: %w", err)
	}
	if len(out.CiphertextBlob) > 0xffff {
		return nil, errors.New("seal: wrapped data key too long")
	}
	aead, err := newAEAD(out.Plaintext)
	clear(out.Plaintext)
	if err != nil {
		return nil, err
	}
	k = &sealKey{aead: aead, wrapped: out.CiphertextBlob, born: now, uses: 1}
	e.mu.Lock()
	if len(e.sealKs) >= MaxKeys {
		clear(e.sealKs)
	}
	e.sealKs[id] = k
	e.mu.Unlock()
	return k, nil
}

// Open decrypts a value Seal made for the same context. A value sealed for another workspace,
// kind or item, or under another key, fails with ErrOpen.
func (e *Envelope) Open(ctx context.Context, sealed []byte, c Context) ([]byte, error) {
	if err := c.valid(); err != nil {
		return nil, err
	}
	if len(sealed) < 3 || sealed[0] != version {
		return nil, fmt.Errorf("%w: unknown format", ErrOpen)
	}
	n := int(binary.BigEndian.Uint16(sealed[1:3]))
	if len(sealed) < 3+n {
		return nil, fmt.Errorf("%w: truncated", ErrOpen)
	}
	wrapped, rest := sealed[3:3+n], sealed[3+n:]
	aead, err := e.openKey(ctx, wrapped, c)
	if err != nil {
		return nil, err
	}
	if len(rest) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: truncated", ErrOpen)
	}
	plain, err := aead.Open(nil, rest[:aead.NonceSize()], rest[aead.NonceSize():], append(c.aad(), wrapped...))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

// openKey returns the data key wrapped for c's workspace and kind, from the cache or from KMS
// Decrypt (which checks the encryption context: a key wrapped for another workspace or kind fails).
func (e *Envelope) openKey(ctx context.Context, wrapped []byte, c Context) (cipher.AEAD, error) {
	id := c.Workspace + "\x00" + c.Kind + "\x00" + string(wrapped)
	now := e.now()
	e.mu.Lock()
	k := e.openKs[id]
	e.mu.Unlock()
	if k != nil && now.Sub(k.born) < MaxAge {
		return k.aead, nil
	}
	out, err := e.kms.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob: wrapped, EncryptionContext: c.kmsContext(), KeyId: aws.String(e.keyID),
	})
	if err != nil {
		var bad *types.InvalidCiphertextException
		var inc *types.IncorrectKeyException
		if errors.As(err, &bad) || errors.As(err, &inc) {
			return nil, ErrOpen
		}
		return nil, fmt.Errorf("seal: decrypt data key: %w", err)
	}
	aead, err := newAEAD(out.Plaintext)
	clear(out.Plaintext)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.openKs) >= MaxKeys {
		clear(e.openKs)
	}
	e.openKs[id] = &openKey{aead: aead, born: now}
	e.mu.Unlock()
	return aead, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("seal: data key of %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}
