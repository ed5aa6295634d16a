package evacuation

import (
	"context"
	"slices"

	"github.com/novaha/novaha/lib/pacemaker"
)

// StockAttribute is the node attribute of the stock fence_compute and NovaEvacuate.
const StockAttribute = "evacuate"

// AttrdStock is StockEvacuate through attrd_updater, as the stock agents use it.
// Outside Pacemaker it reports no host and sets nothing.
type AttrdStock struct {
	Attrd *pacemaker.Attrd
}

var _ StockEvacuate = AttrdStock{}

// Requested lists the hosts whose attribute evacuate is yes.
func (a AttrdStock) Requested(ctx context.Context) ([]string, error) {
	all, err := a.Attrd.QueryAll(ctx, StockAttribute)
	if err != nil {
		return nil, err
	}
	var out []string
	for host, v := range all {
		if v == "yes" {
			out = append(out, host)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Done sets the host's attribute to no, as the stock NovaEvacuate does once the host
// is evacuated.
func (a AttrdStock) Done(ctx context.Context, host string) error {
	return a.Attrd.SetPrivate(ctx, host, StockAttribute, "no")
}
