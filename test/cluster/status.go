package cluster

import (
	"encoding/xml"
	"fmt"
)

// Status is the part of `crm_mon -1 --output-as=xml` that tests look at.
type Status struct {
	// PacemakerdState is pacemakerd's own state ("running" once all daemons are up).
	PacemakerdState string
	// DC is the name of the Designated Controller, "" while there is none.
	DC string
	// Quorate reports whether the DC has quorum.
	Quorate bool
	// StonithEnabled mirrors the stonith-enabled cluster option.
	StonithEnabled bool
	Nodes          []NodeStatus
	Resources      []ResourceStatus
}

// NodeStatus is one node of crm_mon's <nodes>.
type NodeStatus struct {
	Name    string
	Online  bool
	IsDC    bool
	Standby bool
	Unclean bool
	Type    string // member, remote, ...
}

// ResourceStatus is one primitive of crm_mon's <resources>, including those inside
// groups and clones.
type ResourceStatus struct {
	ID     string
	Agent  string // e.g. "stonith:fence_dummy", "ocf:pacemaker:Dummy"
	Role   string // Started, Stopped, ...
	Active bool
	Failed bool
	// Pending is crm_mon's pending attribute ("Starting", ...), "" without one. A
	// resource whose start is under way is already active: Pacemaker 2.1.5 tells it
	// by Role ("Starting"), others by this attribute.
	Pending string
	Nodes   []string // where it runs
}

// Node returns the named node's status.
func (s *Status) Node(name string) (NodeStatus, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeStatus{}, false
}

// Resource returns the status of the resource with the given ID.
func (s *Status) Resource(id string) (ResourceStatus, bool) {
	for _, r := range s.Resources {
		if r.ID == id {
			return r, true
		}
	}
	return ResourceStatus{}, false
}

// Ready reports whether node is online and a DC exists: the harness's readiness test.
func (s *Status) Ready(node string) bool {
	n, ok := s.Node(node)
	return ok && n.Online && s.DC != ""
}

type xmlResource struct {
	ID      string `xml:"id,attr"`
	Agent   string `xml:"resource_agent,attr"`
	Role    string `xml:"role,attr"`
	Active  bool   `xml:"active,attr"`
	Failed  bool   `xml:"failed,attr"`
	Pending string `xml:"pending,attr"`
	Nodes   []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

type xmlMon struct {
	Pacemakerd struct {
		State string `xml:"state,attr"`
	} `xml:"pacemakerd"`
	Summary struct {
		DC struct {
			Present    bool   `xml:"present,attr"`
			Name       string `xml:"name,attr"`
			WithQuorum bool   `xml:"with_quorum,attr"`
		} `xml:"current_dc"`
		Options struct {
			StonithEnabled bool `xml:"stonith-enabled,attr"`
		} `xml:"cluster_options"`
	} `xml:"summary"`
	Nodes []struct {
		Name    string `xml:"name,attr"`
		Online  bool   `xml:"online,attr"`
		IsDC    bool   `xml:"is_dc,attr"`
		Standby bool   `xml:"standby,attr"`
		Unclean bool   `xml:"unclean,attr"`
		Type    string `xml:"type,attr"`
	} `xml:"nodes>node"`
	Resources struct {
		Primitives []xmlResource `xml:"resource"`
		Groups     []struct {
			Primitives []xmlResource `xml:"resource"`
		} `xml:"group"`
		Clones []struct {
			Primitives []xmlResource `xml:"resource"`
			Groups     []struct {
				Primitives []xmlResource `xml:"resource"`
			} `xml:"group"`
		} `xml:"clone"`
	} `xml:"resources"`
}

// ParseStatus decodes `crm_mon -1 --output-as=xml`, for harnesses that run crm_mon
// themselves (test/e2e runs it inside a node's namespaces).
func ParseStatus(out []byte) (*Status, error) { return parseStatus(out) }

// parseStatus decodes crm_mon's XML output.
func parseStatus(out []byte) (*Status, error) {
	var m xmlMon
	if err := xml.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("parsing crm_mon XML: %w", err)
	}
	s := &Status{
		PacemakerdState: m.Pacemakerd.State,
		Quorate:         m.Summary.DC.WithQuorum,
		StonithEnabled:  m.Summary.Options.StonithEnabled,
	}
	if m.Summary.DC.Present {
		s.DC = m.Summary.DC.Name
	}
	for _, n := range m.Nodes {
		s.Nodes = append(s.Nodes, NodeStatus{Name: n.Name, Online: n.Online, IsDC: n.IsDC,
			Standby: n.Standby, Unclean: n.Unclean, Type: n.Type})
	}
	add := func(rs []xmlResource) {
		for _, r := range rs {
			st := ResourceStatus{ID: r.ID, Agent: r.Agent, Role: r.Role, Active: r.Active, Failed: r.Failed, Pending: r.Pending}
			for _, n := range r.Nodes {
				st.Nodes = append(st.Nodes, n.Name)
			}
			s.Resources = append(s.Resources, st)
		}
	}
	add(m.Resources.Primitives)
	for _, g := range m.Resources.Groups {
		add(g.Primitives)
	}
	for _, c := range m.Resources.Clones {
		add(c.Primitives)
		for _, g := range c.Groups {
			add(g.Primitives)
		}
	}
	return s, nil
}

// FenceEvent is one entry of the fencing history (`stonith_admin --history`).
type FenceEvent struct {
	Action     string // reboot, off, on
	Target     string
	Status     string // success, failed, pending
	ExitReason string
	Delegate   string // the node that ran the device
	Client     string
	Origin     string
	Completed  string // as Pacemaker prints it, e.g. "2026-11-21 23:33:09Z"
}

// parseHistory decodes `stonith_admin --history NODE --output-as=xml`.
func parseHistory(out []byte) ([]FenceEvent, error) {
	var r struct {
		Lists []struct {
			Name   string `xml:"name,attr"`
			Events []struct {
				Action     string `xml:"action,attr"`
				Target     string `xml:"target,attr"`
				Status     string `xml:"status,attr"`
				ExitReason string `xml:"exit-reason,attr"`
				Delegate   string `xml:"delegate,attr"`
				Client     string `xml:"client,attr"`
				Origin     string `xml:"origin,attr"`
				Completed  string `xml:"completed,attr"`
			} `xml:"fence_event"`
		} `xml:"list"`
	}
	if err := xml.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("parsing fencing history XML: %w", err)
	}
	var evs []FenceEvent
	for _, l := range r.Lists {
		for _, e := range l.Events {
			evs = append(evs, FenceEvent(e))
		}
	}
	return evs, nil
}
