"""The demo's network: a bridge on the host and one network namespace per app node."""

from __future__ import annotations

import re
import subprocess

from workbook.deploy.plan import Plan, _run, _state, _state_add
from workbook.errors import SetupError, step


def net_up(plan: Plan) -> None:
    state = _state(plan)
    existing_ns = _run("ip", "netns", "list")
    if plan.bridge not in state["links"]:
        if subprocess.run(["ip", "link", "show", plan.bridge], capture_output=True).returncode == 0:
            raise SetupError(f"a network link {plan.bridge} exists that the demo did not make",
                             f"remove it (ip link del {plan.bridge}) if it is a leftover")
        taken = _routes_overlapping(plan)
        if taken:
            raise SetupError(f"this machine already routes {taken}, which overlaps the demo's "
                             f"{plan.net}.0/24", "pick another network for the demo (Plan.net)")
        _run("ip", "link", "add", plan.bridge, "type", "bridge")
        _state_add(plan, "links", plan.bridge)
        _run("ip", "addr", "add", f"{plan.gateway}/24", "dev", plan.bridge)
        _run("ip", "link", "set", plan.bridge, "up")
    for index, ns in enumerate(plan.nodes):
        if ns in state["netns"]:
            continue
        if re.search(rf"^{re.escape(ns)}\b", existing_ns, re.M):
            raise SetupError(f"a network namespace {ns} exists that the demo did not make",
                             f"remove it (ip netns del {ns}) if it is a leftover")
        host_end, ns_end = plan.veth(index)
        _run("ip", "netns", "add", ns)
        _state_add(plan, "netns", ns)
        _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        _state_add(plan, "links", host_end)
        _run("ip", "link", "set", ns_end, "netns", ns)
        _run("ip", "link", "set", host_end, "master", plan.bridge)
        _run("ip", "link", "set", host_end, "up")
        _run("ip", "-n", ns, "addr", "add", f"{plan.node_ip(index)}/24", "dev", ns_end)
        _run("ip", "-n", ns, "link", "set", ns_end, "up")
        _run("ip", "-n", ns, "link", "set", "lo", "up")
    step("deploy", f"network: bridge {plan.bridge} {plan.gateway}/24, nodes "
                   + ", ".join(f"{ns} {plan.node_ip(i)}" for i, ns in enumerate(plan.nodes)))


def _routes_overlapping(plan: Plan) -> str | None:
    """A route of this machine into the demo's /24 (a VPN, a container network), if any."""
    import ipaddress

    ours = ipaddress.ip_network(f"{plan.net}.0/24")
    for line in _run("ip", "-4", "route", "show").splitlines():
        destination = line.split()[0] if line.split() else "default"
        if destination == "default":
            continue
        try:
            if ipaddress.ip_network(destination, strict=False).overlaps(ours):
                return destination
        except ValueError:
            continue
    return None


def net_down(plan: Plan) -> None:
    state = _state(plan)
    for ns in state.get("netns", []):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    for link in reversed(state.get("links", [])):
        subprocess.run(["ip", "link", "del", link], capture_output=True)  # a veth takes its peer
    plan.state_file.unlink(missing_ok=True)


