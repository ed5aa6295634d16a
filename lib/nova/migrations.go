package nova

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Microversions of the migration listing.
var (
	// MicroversionMigrationType (2.23) reports each migration's type.
	MicroversionMigrationType = Microversion{2, 23}
	// MicroversionMigrationPages (2.59) pages the list, filters by changes-since and
	// reports each migration's UUID.
	MicroversionMigrationPages = Microversion{2, 59}
)

// MigrationEvacuation is the migration type of an evacuation.
const MigrationEvacuation = "evacuation"

// migrationsMicroversion is 2.59 when Nova offers it, else the highest.
func (c *Client) migrationsMicroversion() Microversion {
	if c.max.AtLeast(MicroversionMigrationPages) {
		return MicroversionMigrationPages
	}
	return c.max
}

func (o ListMigrationsOpts) query(mv Microversion) url.Values {
	q := url.Values{}
	if o.MigrationType != "" {
		q.Set("migration_type", o.MigrationType)
	}
	if o.SourceCompute != "" {
		q.Set("source_compute", o.SourceCompute)
	}
	if !o.ChangesSince.IsZero() && mv.AtLeast(MicroversionMigrationPages) {
		q.Set("changes-since", o.ChangesSince.UTC().Format(time.RFC3339))
	}
	return q
}

type migrationJSON struct {
	ID            int    `json:"id"`
	UUID          string `json:"uuid"`
	InstanceUUID  string `json:"instance_uuid"`
	SourceCompute string `json:"source_compute"`
	DestCompute   string `json:"dest_compute"`
	Status        string `json:"status"`
	MigrationType string `json:"migration_type"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
}

// ListMigrations lists the migrations that match opts (GET /os-migrations, every
// page). Before 2.59, ChangesSince is not sent and the caller gets everything; before
// 2.23 Nova does not report the type, which is then the one asked for.
func (c *Client) ListMigrations(ctx context.Context, opts ListMigrationsOpts) ([]Migration, error) {
	mv := c.migrationsMicroversion()
	sc := c.at(mv)
	op := "listing migrations"
	if opts.SourceCompute != "" {
		op += " from " + opts.SourceCompute
	}
	u := sc.ServiceURL("os-migrations")
	if q := opts.query(mv).Encode(); q != "" {
		u += "?" + q
	}
	var out []Migration
	err := listPages(ctx, sc, u, "migrations_links", op, func(doc map[string]json.RawMessage) (int, error) {
		var list []migrationJSON
		if err := json.Unmarshal(doc["migrations"], &list); err != nil {
			return 0, fmt.Errorf("migrations: %w", err)
		}
		for _, j := range list {
			m := Migration{ID: j.ID, UUID: j.UUID, InstanceUUID: j.InstanceUUID, SourceCompute: j.SourceCompute,
				DestCompute: j.DestCompute, Status: j.Status, MigrationType: j.MigrationType}
			if m.MigrationType == "" {
				m.MigrationType = opts.MigrationType
			}
			m.CreatedAt, _ = parseTime(j.CreatedAt)
			m.UpdatedAt, _ = parseTime(j.UpdatedAt)
			out = append(out, m)
		}
		return len(list), nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
