package seal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/hookgate/hookgate/local/emulator"
	"github.com/hookgate/hookgate/local/emulator/emulatortest"
	"github.com/hookgate/hookgate/shared/awscfg"
	"github.com/hookgate/hookgate/shared/seal"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Run(m)) }

// localKMS is a KMS client on the test binary's local-kms, and a second key created there.
func localKMS(t *testing.T) (*kms.Client, string) {
	t.Helper()
	cfg, err := awscfg.Load(context.Background(), func(k string) string {
		return map[string]string{awscfg.EnvKMSEndpoint: emulatortest.KMS(t)}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.KMS()
	other, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	return c, *other.KeyMetadata.KeyId
}

// countingKMS counts the calls that reach KMS.
type countingKMS struct {
	seal.KMS
	gen, dec atomic.Int32
}

func (c *countingKMS) GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, o ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	c.gen.Add(1)
	return c.KMS.GenerateDataKey(ctx, in, o...)
}

func (c *countingKMS) Decrypt(ctx context.Context, in *kms.DecryptInput, o ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	c.dec.Add(1)
	return c.KMS.Decrypt(ctx, in, o...)
}

// A value sealed for workspace A, kind X and item I opens there only: not as workspace B, kind Y
// or item J, not with another key, not altered. Against the real KMS emulator.
func TestSealBindsContextAndKey(t *testing.T) {
	client, otherKey := localKMS(t)
	ctx := context.Background()
	now := time.Now
	env := seal.New(client, emulator.LocalKeyID, now)
	a := seal.Context{Workspace: "ws-a", Kind: seal.KindSubscriptionSecret, Item: "sub_1"}
	secret := []byte("whsec_c2VjcmV0LXZhbHVlLW9mLWEtdGVuYW50")

	sealed, err := env.Seal(ctx, secret, a)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value holds the plaintext")
	}
	got, err := env.Open(ctx, sealed, a)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %q %v", got, err)
	}
	// A fresh envelope (another process) opens it through KMS too.
	if got, err := seal.New(client, emulator.LocalKeyID, now).Open(ctx, sealed, a); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open in another envelope: %q %v", got, err)
	}

	wrong := map[string]seal.Context{
		"workspace B": {Workspace: "ws-b", Kind: a.Kind, Item: a.Item},
		"kind Y":      {Workspace: a.Workspace, Kind: seal.KindSourceSecret, Item: a.Item},
		"item J":      {Workspace: a.Workspace, Kind: a.Kind, Item: "sub_2"},
	}
	for name, c := range wrong {
		// Both with the data key cached (the same envelope) and through KMS (a fresh one).
		for _, e := range []*seal.Envelope{env, seal.New(client, emulator.LocalKeyID, now)} {
			if got, err := e.Open(ctx, sealed, c); !errors.Is(err, seal.ErrOpen) || got != nil {
				t.Errorf("opened as %s: %q %v", name, got, err)
			}
		}
	}
	if got, err := seal.New(client, otherKey, now).Open(ctx, sealed, a); err == nil || got != nil {
		t.Errorf("opened with another key: %q %v", got, err)
	}
	other, err := seal.New(client, otherKey, now).Seal(ctx, secret, a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := env.Open(ctx, other, a); err == nil || got != nil {
		t.Errorf("opened a value of another key: %q %v", got, err)
	}
	for i := range sealed {
		bad := bytes.Clone(sealed)
		bad[i] ^= 1
		if got, err := env.Open(ctx, bad, a); err == nil {
			t.Fatalf("opened with byte %d altered: %q", i, got)
		}
	}
}

// A data key seals many values and is opened once per process: a webhook does not cost a KMS
// call. It is replaced after MaxUses values and after MaxAge.
func TestSealCachesDataKeys(t *testing.T) {
	client, _ := localKMS(t)
	ctx := context.Background()
	counted := &countingKMS{KMS: client}
	clock := time.Now()
	env := seal.New(counted, emulator.LocalKeyID, func() time.Time { return clock })
	c := seal.Context{Workspace: "ws", Kind: seal.KindSourceSecret, Item: "github"}
	var values [][]byte
	for range 5 {
		v, err := env.Seal(ctx, []byte("s"), c)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, v)
	}
	for _, v := range values {
		if _, err := env.Open(ctx, v, c); err != nil {
			t.Fatal(err)
		}
	}
	if g, d := counted.gen.Load(), counted.dec.Load(); g != 1 || d != 1 {
		t.Fatalf("5 seals and 5 opens cost %d GenerateDataKey and %d Decrypt, want 1 and 1", g, d)
	}
	for range seal.MaxUses {
		if _, err := env.Seal(ctx, []byte("s"), c); err != nil {
			t.Fatal(err)
		}
	}
	if g := counted.gen.Load(); g != 2 {
		t.Fatalf("after MaxUses: %d GenerateDataKey, want 2", g)
	}
	clock = clock.Add(seal.MaxAge)
	if _, err := env.Seal(ctx, []byte("s"), c); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Open(ctx, values[0], c); err != nil {
		t.Fatal(err)
	}
	if g, d := counted.gen.Load(), counted.dec.Load(); g != 3 || d != 2 {
		t.Fatalf("after MaxAge: %d GenerateDataKey and %d Decrypt, want 3 and 2", g, d)
	}
}

// A function allowed only to open (kms:Decrypt) cannot seal, and one allowed only to seal cannot
// open: the KMS errors come through, wrapped.
func TestSealKMSErrors(t *testing.T) {
	denied := &kmstypes.KMSInvalidStateException{Message: new("denied")}
	env := seal.New(failingKMS{err: denied}, "k", time.Now)
	c := seal.Context{Workspace: "w", Kind: seal.KindBotToken, Item: "telegram"}
	if _, err := env.Seal(context.Background(), []byte("x"), c); !errors.Is(err, denied) {
		t.Fatalf("seal: %v", err)
	}
	if _, err := env.Open(context.Background(), []byte{1, 0, 1, 7, 1, 2, 3}, c); !errors.Is(err, denied) {
		t.Fatalf("open: %v", err)
	}
	if _, err := env.Seal(context.Background(), []byte("x"), seal.Context{Workspace: "w", Kind: seal.KindBotToken}); err == nil {
		t.Fatal("sealed without an item")
	}
}

type failingKMS struct{ err error }

func (f failingKMS) GenerateDataKey(context.Context, *kms.GenerateDataKeyInput, ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error) {
	return nil, f.err
}

func (f failingKMS) Decrypt(context.Context, *kms.DecryptInput, ...func(*kms.Options)) (*kms.DecryptOutput, error) {
	return nil, f.err
}
