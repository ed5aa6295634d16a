package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
)

// ImageProperties reads an image from Glance (GET /v2/images/{id}): its properties
// (Glance v2 lists an image's own properties beside its standard fields; both are
// returned, strings as they are, numbers and booleans formatted) and its tags.
func (c *Client) ImageProperties(ctx context.Context, imageID string) (map[string]string, []string, error) {
	if imageID == "" {
		return nil, nil, fmt.Errorf("reading an image: no image id")
	}
	sc, err := c.catalogService(ctx, typeImage)
	if err != nil {
		return nil, nil, err
	}
	var doc map[string]json.RawMessage
	_, err = sc.Get(ctx, sc.ServiceURL("images", imageID), &doc, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return nil, nil, wrapErr("Glance", "reading image "+imageID, err)
	}
	props := map[string]string{}
	var tags []string
	for k, raw := range doc {
		if k == "tags" {
			if err := json.Unmarshal(raw, &tags); err != nil {
				return nil, nil, fmt.Errorf("image %s: tags: %w", imageID, err)
			}
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) != nil {
			continue
		}
		switch x := v.(type) {
		case string:
			props[k] = x
		case bool:
			props[k] = strconv.FormatBool(x)
		case float64:
			props[k] = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	return props, tags, nil
}
