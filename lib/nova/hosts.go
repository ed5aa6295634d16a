package nova

import (
	"fmt"
	"sort"
	"strings"
)

// Pacemaker's node names and Nova's host names often differ: a cluster of short names
// (compute-1) in front of a Nova that knows FQDNs (compute-1.example.com), or the other
// way round. MatchHost is the one place that maps one onto the other.

// ShortName is a host name's first label.
func ShortName(host string) string {
	short, _, _ := strings.Cut(host, ".")
	return short
}

// MatchHost finds the Nova host name that name (a cluster node name) designates among
// hosts (the nova-compute services' host names), in this order:
//
//  1. a host equal to name (letter case ignored when only one host differs by case);
//  2. with domain set: ShortName(name) + "." + domain (the fence_compute rule);
//  3. automatic: if name is a short name, the hosts whose short name it is; if name
//     is an FQDN, the host that is its short name (Nova without domains). A host in
//     another domain never matches an FQDN.
//
// It fails with ErrNoSuchHost when nothing matches, and with ErrAmbiguousHost (naming
// the candidates) when more than one host matches at the same step: fencing the wrong
// host is worse than fencing none.
func MatchHost(name, domain string, hosts []string) (string, error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" {
		return "", fmt.Errorf("%w: empty host name", ErrNoSuchHost)
	}
	pick := func(step string, cands []string) (string, bool, error) {
		switch len(uniq(cands)) {
		case 0:
			return "", false, nil
		case 1:
			return cands[0], true, nil
		}
		return "", true, fmt.Errorf("%w: %q matches %s (%s); set the domain option or use the full name",
			ErrAmbiguousHost, name, strings.Join(uniq(cands), ", "), step)
	}
	var exact, fold []string
	for _, h := range hosts {
		if h == name {
			exact = append(exact, h)
		} else if strings.EqualFold(h, name) {
			fold = append(fold, h)
		}
	}
	if h, ok, err := pick("exact", exact); ok {
		return h, err
	}
	if h, ok, err := pick("differing in letter case", fold); ok {
		return h, err
	}
	short := ShortName(name)
	if d := strings.Trim(strings.TrimSpace(domain), "."); d != "" {
		var withDomain []string
		for _, h := range hosts {
			if strings.EqualFold(h, short+"."+d) {
				withDomain = append(withDomain, h)
			}
		}
		if h, ok, err := pick("with domain "+d, withDomain); ok {
			return h, err
		}
	}
	var auto []string
	for _, h := range hosts {
		switch {
		case short == name && strings.EqualFold(ShortName(h), name):
			auto = append(auto, h) // short node name, FQDN in Nova
		case short != name && strings.EqualFold(h, short):
			auto = append(auto, h) // FQDN node name, short name in Nova
		}
	}
	if h, ok, err := pick("by short name", auto); ok {
		return h, err
	}
	return "", fmt.Errorf("%w: no nova-compute service on %q", ErrNoSuchHost, name)
}

func uniq(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	j := 0
	for i := range out {
		if i == 0 || out[i] != out[i-1] {
			out[j] = out[i]
			j++
		}
	}
	return out[:j]
}
