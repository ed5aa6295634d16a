package nova

import (
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
// tmpfs such as /run in production; each entry is a 0600 file named by a hash of
// everything that identifies the credentials, the secret included, so that a changed
// password never reuses an old token. Entries are used only while the token has more
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

// cacheKey identifies the credentials and the endpoint choice.
func cacheKey(ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts) string {
	h := sha256.New()
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

// pruneTokens removes the other entries whose token has expired.
func pruneTokens(dir, keep string, now time.Time) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
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
