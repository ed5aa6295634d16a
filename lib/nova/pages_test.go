package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

// A "next" link that repeats one already followed is a broken API: stopping there
// would give a partial list (a fenced host looking emptier than it is), so it is an
// error, which the caller retries.
func TestListPagesRepeatedNextIsAnError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		marker := r.URL.Query().Get("marker")
		next := "m1"
		if marker == "m1" {
			next = "m2"
		} else if marker == "m2" {
			next = "m1" // back to a page already read
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items": [{"id": %q}], "items_links": [{"rel": "next", "href": "http://elsewhere/items?marker=%s"}]}`,
			"after-"+marker, next)
	}))
	defer ts.Close()
	sc := &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{HTTPClient: *ts.Client()}, Endpoint: ts.URL + "/"}
	pages := 0
	err := listPages(context.Background(), sc, ts.URL+"/items", "items_links", "listing items", func(doc map[string]json.RawMessage) (int, error) {
		pages++
		return 1, nil
	})
	if err == nil {
		t.Fatalf("listing ended without error after %d pages", pages)
	}
	if pages != 3 {
		t.Errorf("%d pages read, want 3", pages)
	}
}
