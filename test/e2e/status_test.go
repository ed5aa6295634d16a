package e2e

import (
	"testing"

	"github.com/novaha/novaha/test/cluster"
)

// crm_mon 2.1.5's XML for a clone whose start on compute1 is under way (from a CIB with
// the start recorded pending), started on compute2, stopped elsewhere.
const pendingStartXML = `<pacemaker-result api-version="2.25" request="crm_mon -1 --output-as=xml">
  <resources>
    <resource id="nova-evacuate" resource_agent="ocf:novaha:NovaEvacuate" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="ctl2" id="2" cached="true"/>
    </resource>
    <clone id="nova-compute-clone" multi_state="false" unique="false" managed="true" disabled="false" failed="false" failure_ignored="false">
      <resource id="nova-compute" resource_agent="ocf:novaha:NovaCompute" role="Starting" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="compute1" id="compute1" cached="true"/>
      </resource>
      <resource id="nova-compute" resource_agent="ocf:novaha:NovaCompute" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="compute2" id="compute2" cached="true"/>
      </resource>
      <resource id="nova-compute" resource_agent="ocf:novaha:NovaCompute" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
    </clone>
  </resources>
  <status code="0" message="OK"/>
</pacemaker-result>`

func TestActiveOnIgnoresPendingStart(t *testing.T) {
	s, err := cluster.ParseStatus([]byte(pendingStartXML))
	if err != nil {
		t.Fatal(err)
	}
	if got := ActiveOn(s, "nova-compute"); len(got) != 1 || got[0] != "compute2" {
		t.Errorf("ActiveOn(nova-compute) = %v, want [compute2]: compute1's start is still under way", got)
	}
	if got := ActiveOn(s, "nova-evacuate"); len(got) != 1 || got[0] != "ctl2" {
		t.Errorf("ActiveOn(nova-evacuate) = %v, want [ctl2]", got)
	}
}
