package nova

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// A fence agent is a new process for every action, and Keystone's password check is
// the most expensive step of most of them (a few hundred milliseconds of bcrypt). The
// token cache keeps the token of the last run, with Nova's endpoint and microversions,
// so that the next run within the token's lifetime goes to Nova directly. Should Nova
// refuse the token (revoked), the client authenticates again and retries the request
// once.
//
// The cache is a directory only its owner may enter (0700, created if missing), on a
// tmpfs such as /run in production; each entry is a 0600 file named by an HMAC, keyed
// by the cache's own random key (hmac.key, 0600, made on first use), of everything that
// identifies the credentials, the secret included, so that a changed password never
// reuses an old token and the name tells nothing of the password. Entries are used only while the token has more
// than tokenMargin left.

// DefaultTokenCacheDir is where the agents keep their cache when run as root.
const DefaultTokenCacheDir = "/run/novaha/tokens"

// tokenMargin is how long a cached token must still be valid to be used.
const tokenMargin = 5 * time.Minute

// cachedToken is one cache entry.
type cachedToken struct {
	Token           string    `json:"token"`
	ExpiresAt       time.Time `json:"expires_at"`
	ComputeEndpoint string    `json:"compute_endpoint"`
	MaxMicroversion string    `json:"max_microversion"`
}

// cacheSecretFile is the cache's own random key, which names the entries (see
// cacheKey). It is created on first use, 0600, and never leaves the cache directory.
const cacheSecretFile = "hmac.key"

// cacheSecretSize is the key's length in bytes.
const cacheSecretSize = 32

// cacheSecret returns the cache directory's key. With create, it makes the directory
// and the key when they are missing; without, a missing key is an error (nothing can
// be cached yet). A key that others may read, or that is not ours, is refused.
func cacheSecret(dir string, create bool) ([]byte, error) {
	path := filepath.Join(dir, cacheSecretFile)
	read := func() ([]byte, error) {
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || !ownedByUs(fi) {
			return nil, fmt.Errorf("%s is not a file only we may read", path)
		}
		key, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		if len(key) != cacheSecretSize {
			return nil, fmt.Errorf("%s does not hold a key", path)
		}
		return key, nil
	}
	key, err := read()
	if err == nil || !create || !errors.Is(err, os.ErrNotExist) {
		return key, err
	}
	if err := cacheDir(dir); err != nil {
		return nil, err
	}
	key = make([]byte, cacheSecretSize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	// Written aside, then linked into place: a concurrent run reads a whole key, and
	// the first key linked is the one every run uses.
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(key)
	if err := errors.Join(werr, f.Close()); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	return read()
}

// cacheDir makes the cache directory if it is missing, and checks that only we may
// enter it.
func cacheDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 || !ownedByUs(fi) {
		return fmt.Errorf("%s is not a directory only we may enter", dir)
	}
	return nil
}

// cacheKey names the entry of the credentials and the endpoint choice: an
// HMAC-SHA256 keyed by the cache's own random key, so that the name, which anyone
// listing the directory could see, is no unsalted hash of the password that could be
// tried against guesses.
func cacheKey(secret []byte, ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts) string {
	h := hmac.New(sha256.New, secret)
	scope := gophercloud.AuthScope{}
	if ao.Scope != nil {
		scope = *ao.Scope
	}
	for _, f := range []string{ao.IdentityEndpoint, ao.Username, ao.UserID, ao.DomainName, ao.DomainID, ao.Password,
		ao.ApplicationCredentialID, ao.ApplicationCredentialName, ao.ApplicationCredentialSecret,
		scope.ProjectName, scope.ProjectID, scope.DomainName, scope.DomainID, eo.Region, string(eo.Availability)} {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40]
}

// loadToken returns the cached entry for key if it is valid for long enough.
func loadToken(dir, key string, now time.Time) (cachedToken, bool) {
	var t cachedToken
	path := filepath.Join(dir, key+".json")
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 || !ownedByUs(fi) {
		return t, false
	}
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &t) != nil {
		return t, false
	}
	if t.Token == "" || t.ComputeEndpoint == "" || t.ExpiresAt.Sub(now) < tokenMargin {
		return t, false
	}
	return t, true
}

// saveToken writes the entry atomically, and removes expired entries.
func saveToken(dir, key string, t cachedToken, now time.Time) error {
	if err := cacheDir(dir); err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, key+".json")); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	pruneTokens(dir, key, now)
	return nil
}

// staleTemp is the age of a temporary file that no running save can still be writing:
// one left by a run that was killed.
const staleTemp = time.Minute

// pruneTokens removes the other entries whose token has expired, and the temporary
// files of killed runs.
func pruneTokens(dir, keep string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && now.Sub(fi.ModTime()) > staleTemp {
				_ = os.Remove(filepath.Join(dir, name))
			}
			continue
		}
		if !strings.HasSuffix(name, ".json") || name == keep+".json" {
			continue
		}
		var t cachedToken
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || json.Unmarshal(data, &t) != nil || now.After(t.ExpiresAt) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
}

// tokenOf extracts the token and its expiry from a provider that has authenticated.
func tokenOf(p *gophercloud.ProviderClient) (string, time.Time, bool) {
	r, ok := p.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return "", time.Time{}, false
	}
	t, err := r.ExtractToken()
	if err != nil || t.ID == "" {
		return "", time.Time{}, false
	}
	return t.ID, t.ExpiresAt, true
}

// ownedByUs reports whether the file belongs to the effective user.
func ownedByUs(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
