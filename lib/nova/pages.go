package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/gophercloud/gophercloud/v2"
)

// maxPages bounds a paginated listing, should a broken API keep answering "next".
const maxPages = 10000

// link is one entry of a "<collection>_links" list.
type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// listPages GETs the collection at rawURL page by page, following the "next" link of
// linksKey, and gives each page's raw document to page.
//
// Only the query of a "next" link is used, on our own URL: Nova builds the link from
// its own idea of its address, which a proxy or an internal endpoint may not share.
// An empty page ends the listing; a link back to a page already read is an error.
func listPages(ctx context.Context, sc *gophercloud.ServiceClient, rawURL, linksKey, op string,
	page func(doc map[string]json.RawMessage) (n int, err error)) error {
	base, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%s: %v", op, err)
	}
	seen := map[string]bool{}
	next := base.String()
	for i := 0; i < maxPages; i++ {
		var doc map[string]json.RawMessage
		if _, err := sc.Get(ctx, next, &doc, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
			return wrapErr("Nova", op, err)
		}
		n, err := page(doc)
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		var links []link
		if raw, ok := doc[linksKey]; ok {
			if err := json.Unmarshal(raw, &links); err != nil {
				return fmt.Errorf("%s: %s: %w", op, linksKey, err)
			}
		}
		href := ""
		for _, l := range links {
			if l.Rel == "next" {
				href = l.Href
			}
		}
		if href == "" || n == 0 {
			return nil
		}
		u, err := url.Parse(href)
		if err != nil {
			return fmt.Errorf("%s: next link: %v", op, err)
		}
		nu := *base
		nu.RawQuery = u.RawQuery
		next = nu.String()
		if seen[next] {
			// A partial list is worse than none: a fenced host would look emptier
			// than it is.
			return fmt.Errorf("%s: Nova links back to a page already read (%s)", op, u.RawQuery)
		}
		seen[next] = true
	}
	return fmt.Errorf("%s: more than %d pages", op, maxPages)
}
