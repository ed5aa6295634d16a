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
// hosts (the nova-compute services' host names). Every rule is tried, and the hosts
// they find are pooled:
//
//  1. a host equal to name, letter case ignored;
//  2. with domain set, and only when name is a short name (no dot): name + "." +
//     domain (the fence_compute rule). An FQDN is never moved into the domain:
//     compute-1.other.com does not designate compute-1.example.com;
//  3. without domain, a short name designates the hosts whose short name it is; with
//     or without domain, an FQDN designates the host that is its short name (Nova
//     without domains). A host in another domain never matches an FQDN.
//
// It fails with ErrNoSuchHost when nothing matches, and with ErrAmbiguousHost (naming
// the candidates and the rules that found them) when more than one distinct host
// matches, whichever rules found them: fencing the wrong host is worse than fencing
// none, and no rule is more right than another when Nova holds both compute-1 and
// compute-1.example.com (often a stale record left by a renamed host).
func MatchHost(name, domain string, hosts []string) (string, error) {
	name = strings.TrimSuffix(strings.TrimSpace(name), ".")
	if name == "" {
		return "", fmt.Errorf("%w: empty host name", ErrNoSuchHost)
	}
	short := ShortName(name)
	d := strings.Trim(strings.TrimSpace(domain), ".")
	found := map[string][]string{} // host -> the rules that found it
	add := func(h, rule string) {
		for _, r := range found[h] {
			if r == rule {
				return
			}
		}
		found[h] = append(found[h], rule)
	}
	for _, h := range hosts {
		if strings.EqualFold(h, name) {
			add(h, "exact name")
		}
		if d != "" && short == name && strings.EqualFold(h, short+"."+d) {
			add(h, "with domain "+d)
		}
		switch {
		case d == "" && short == name && strings.EqualFold(ShortName(h), name):
			add(h, "by short name") // short node name, FQDN in Nova
		case short != name && strings.EqualFold(h, short):
			add(h, "by short name") // FQDN node name, short name in Nova
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("%w: no nova-compute service on %q", ErrNoSuchHost, name)
	case 1:
		for h := range found {
			return h, nil
		}
	}
	cands := make([]string, 0, len(found))
	for h := range found {
		cands = append(cands, h)
	}
	sort.Strings(cands)
	rules := map[string]bool{}
	why := make([]string, 0, len(cands))
	for _, h := range cands {
		r := strings.Join(found[h], ", ")
		rules[r] = true
		why = append(why, h+": "+r)
	}
	if len(rules) == 1 {
		why = []string{strings.Join(found[cands[0]], ", ")}
	}
	way := "set the domain option or use the full name"
	if d != "" || short != name {
		way = "delete the stale nova-compute service record (openstack compute service delete)"
	}
	return "", fmt.Errorf("%w: %q matches %s (%s); %s",
		ErrAmbiguousHost, name, strings.Join(cands, ", "), strings.Join(why, "; "), way)
}
