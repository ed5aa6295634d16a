package nova

import (
	"bytes"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/yaml.v2"
)

// gophercloud's clouds.Parse dereferences an entry's auth section without checking it:
// an entry with no auth, or one whose fields have the wrong YAML types, panics inside
// it, which a fence agent turns into a stack trace and an exit code (2) that means
// "OFF" to a status. So clouds.yaml and secure.yaml are read and the entry checked
// here first, and Parse runs under recover.

// parseClouds is clouds.Parse; tests make it panic.
var parseClouds = clouds.Parse

// cloudFile is a clouds.yaml or secure.yaml read from disk.
type cloudFile struct {
	path string
	data []byte
}

// findCloudsYAML reads the clouds.yaml that gophercloud would read, and the
// secure.yaml beside it if there is one.
func (c Config) findCloudsYAML() (cloudsFile, secureFile *cloudFile, err error) {
	getenv := c.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var locations []string
	switch {
	case c.CloudsFile != "":
		locations = []string{c.CloudsFile}
	case getenv("OS_CLIENT_CONFIG_FILE") != "":
		locations = []string{getenv("OS_CLIENT_CONFIG_FILE")}
	default:
		if cwd, err := os.Getwd(); err == nil {
			locations = append(locations, filepath.Join(cwd, "clouds.yaml"))
		}
		userConfig := getenv("XDG_CONFIG_HOME")
		if userConfig == "" {
			if home, err := os.UserHomeDir(); err == nil {
				userConfig = filepath.Join(home, ".config")
			}
		}
		if userConfig != "" {
			locations = append(locations, filepath.Join(userConfig, "openstack", "clouds.yaml"))
		}
		locations = append(locations, "/etc/openstack/clouds.yaml")
	}
	for _, p := range locations {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cloudsFile = &cloudFile{p, data}
		sp := filepath.Join(filepath.Dir(p), "secure.yaml")
		if data, err := os.ReadFile(sp); err == nil {
			secureFile = &cloudFile{sp, data}
		}
		return cloudsFile, secureFile, nil
	}
	return nil, nil, invalid("clouds.yaml not found (searched %v)", locations)
}

// cloudEntry is the named entry of a clouds.yaml or secure.yaml, undecoded: ok is
// false when the file has none.
func cloudEntry(f *cloudFile, name string) (entry map[any]any, ok bool, err error) {
	var doc map[any]any
	if err := yaml.Unmarshal(f.data, &doc); err != nil {
		return nil, false, yamlError(f.path, err)
	}
	all, found := doc["clouds"]
	if !found || all == nil {
		return nil, false, nil
	}
	m, isMap := all.(map[any]any)
	if !isMap {
		return nil, false, invalid("%s: clouds is not a mapping", f.path)
	}
	e, found := m[name]
	if !found {
		return nil, false, nil
	}
	if entry, isMap = e.(map[any]any); !isMap {
		return nil, false, invalid("%s: the entry %q is not a mapping", f.path, name)
	}
	return entry, true, nil
}

// stringFields are the entry's and auth's fields that gophercloud decodes as strings:
// a mapping or a list there makes its decoding fail, quoting the value.
var entryStringFields = []string{"profile", "auth_type", "region_name", "interface", "endpoint_type", "cacert",
	"cert", "key", "identity_api_version", "volume_api_version"}

func checkScalars(path, where string, m map[any]any, keys []string) error {
	for k, v := range m {
		ks, _ := k.(string)
		if keys != nil && !contains(keys, ks) {
			continue
		}
		switch v.(type) {
		case map[any]any, []any:
			return invalid("%s: %s%v must be a single value, not a mapping or a list", path, where, k)
		}
	}
	return nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkCloudEntry checks what clouds.Parse takes for granted in the entry name: it
// exists, it has an auth mapping (in clouds.yaml or in secure.yaml), and the fields it
// decodes as strings or booleans have such values.
func checkCloudEntry(name string, cloudsFile, secureFile *cloudFile) error {
	entry, ok, err := cloudEntry(cloudsFile, name)
	if err != nil {
		return err
	}
	if !ok {
		return invalid("cloud %q not found in %s", name, cloudsFile.path)
	}
	entries := []struct {
		path  string
		entry map[any]any
	}{{cloudsFile.path, entry}}
	if secureFile != nil {
		sentry, ok, err := cloudEntry(secureFile, name)
		if err != nil {
			return err
		}
		if ok {
			entries = append(entries, struct {
				path  string
				entry map[any]any
			}{secureFile.path, sentry})
		}
	}
	hasAuth := false
	for _, e := range entries {
		if err := checkScalars(e.path, "", e.entry, entryStringFields); err != nil {
			return err
		}
		if v, found := e.entry["verify"]; found {
			if _, isBool := v.(bool); !isBool {
				return invalid("%s: verify must be true or false", e.path)
			}
		}
		a, found := e.entry["auth"]
		if !found || a == nil {
			continue
		}
		auth, isMap := a.(map[any]any)
		if !isMap {
			return invalid("%s: the auth of cloud %q is not a mapping", e.path, name)
		}
		if err := checkScalars(e.path, "auth.", auth, nil); err != nil {
			return err
		}
		hasAuth = true
	}
	if !hasAuth {
		return invalid("cloud %q has no auth section in %s (nor in secure.yaml)", name, cloudsFile.path)
	}
	return nil
}

// parseCloud reads the entry cloud of clouds.yaml (and secure.yaml) into gophercloud's
// options: checked first, and with any panic of clouds.Parse turned into an error.
func (c Config) parseCloud(cloud string) (ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts, tlsConf *tls.Config, err error) {
	cloudsFile, secureFile, err := c.findCloudsYAML()
	if err != nil {
		return ao, eo, nil, err
	}
	if err := checkCloudEntry(cloud, cloudsFile, secureFile); err != nil {
		return ao, eo, nil, err
	}
	opts := []clouds.ParseOption{clouds.WithCloudName(cloud), clouds.WithCloudsYAML(bytes.NewReader(cloudsFile.data))}
	if secureFile != nil {
		opts = append(opts, clouds.WithSecureYAML(bytes.NewReader(secureFile.data)))
	}
	defer func() {
		if r := recover(); r != nil {
			// The panic's value may quote the file: say only where.
			err = invalid("%s: the entry %q could not be read (gophercloud failed on it)", cloudsFile.path, cloud)
		}
	}()
	ao, eo, tlsConf, err = parseClouds(opts...)
	if err != nil {
		path := cloudsFile.path
		if secureFile != nil && strings.Contains(err.Error(), "secure.yaml") {
			path = secureFile.path
		}
		if isYAMLError(err) {
			return ao, eo, nil, yamlError(path, err)
		}
		return ao, eo, nil, invalid("%s: %s", path, strings.Join(strings.Fields(err.Error()), " "))
	}
	return ao, eo, tlsConf, nil
}

// yamlLine finds the first line number in a YAML error.
var yamlLine = regexp.MustCompile(`\bline (\d+)\b`)

// yamlError is the error for a file that YAML cannot decode: the file and the line
// only, on one line. The YAML library's own message may quote the value it could not
// decode, over several lines, and the value may be (part of) a password.
func yamlError(path string, err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		return invalid("%s: invalid YAML or an unexpected value type at line %s", path, m[1])
	}
	return invalid("%s: invalid YAML or an unexpected value type", path)
}

// isYAMLError reports whether err comes from the YAML decoder.
func isYAMLError(err error) bool {
	var te *yaml.TypeError
	return errors.As(err, &te) || strings.Contains(err.Error(), "yaml: ")
}
