"""A tiny ML2 mechanism driver for a Neutron with no agents (run inside the realcloud venv's neutron).

Real deployments bind ports through an agent (OVS, OVN, linuxbridge) that later reports the port up. Here there
is no dataplane: this driver binds every port on its first segment as an `ovs` port and marks it ACTIVE at once, so
Neutron sends Nova its `network-vif-plugged` event as it would after an agent's report.
"""
from __future__ import annotations

from neutron_lib import constants
from neutron_lib.plugins.ml2 import api


class BindEveryPort(api.MechanismDriver):
    def initialize(self) -> None:
        pass

    @property
    def connectivity(self) -> str:
        return constants.CONNECTIVITY_L2

    def bind_port(self, context) -> None:
        for segment in context.segments_to_bind:
            context.set_binding(segment[api.ID], "ovs", {"port_filter": True}, status=constants.PORT_STATUS_ACTIVE)
            return
