"""What a research cloud has before its first user logs in: service users and the catalog; then flavors, an image,
an external network and the project's own network and router — made through the real APIs with openstacksdk.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import yaml

from tests.realcloud.configs import REGION, Layout

# CADES-like flavors, as the sandbox has them (tui/sandbox/data.py): name, vCPUs, RAM MB, root disk GB.
FLAVORS = [("m1.tiny", 1, 2048, 10), ("m1.small", 1, 4096, 20), ("m1.medium", 2, 8192, 40),
           ("c1.small", 2, 2048, 20), ("c1.medium", 4, 4096, 40)]
IMAGE = "Ubuntu 24.04"
PROJECT, USER = "demo", "demo"
NETWORK, SUBNET_CIDR = "private", "10.0.0.0/24"
PUBLIC, PUBLIC_CIDR = "public", "172.24.4.0/24"
CATALOG = {  # service: (type, path)
    "glance": ("image", ""), "placement": ("placement", ""), "nova": ("compute", "/v2.1"),
    "neutron": ("network", ""), "cinder": ("block-storage", "/v3/$(project_id)s"),
}


def connect(lay: Layout, user: str = "admin", project: str = "admin", password: str | None = None) -> Any:
    import openstack

    return openstack.connect(
        load_yaml_config=False, load_envvars=False, auth_url=lay.keystone, username=user,
        password=password or lay.admin_password, project_name=project, user_domain_name="Default",
        project_domain_name="Default", region_name=REGION, identity_api_version="3", app_name="realcloud-seed")


def _role(conn: Any, name: str) -> Any:
    return conn.identity.find_role(name) or conn.identity.create_role(name=name)


def identity(lay: Layout) -> None:
    """The service project and users (admin + service roles), the catalog, the demo project and user; clouds.yaml."""
    conn = connect(lay)
    ident = conn.identity
    service_project = ident.create_project(name="service", domain_id="default")
    roles = [_role(conn, "admin"), _role(conn, "service")]
    for name in ("glance", "placement", "nova", "neutron", "cinder"):
        user = ident.create_user(name=name, password=lay.service_password, domain_id="default")
        for role in roles:
            ident.assign_project_role_to_user(service_project, user, role)
    for name, (stype, path) in CATALOG.items():
        svc = ident.create_service(name=name, type=stype)
        for interface in ("public", "internal"):
            ident.create_endpoint(service_id=svc.id, interface=interface, url=lay.url(name) + path,
                                  region_id=REGION)
    demo = ident.create_project(name=PROJECT, domain_id="default")
    lay.extra["demo_password"] = secrets.token_urlsafe(16)
    user = ident.create_user(name=USER, password=lay.extra["demo_password"], domain_id="default",
                             default_project_id=demo.id)
    ident.assign_project_role_to_user(demo, user, _role(conn, "member"))
    lay.extra["demo_project_id"] = demo.id
    write_clouds_yaml(lay)


def cloud_entry(lay: Layout, user: str, project: str, password: str) -> dict[str, Any]:
    return {"auth": {"auth_url": lay.keystone, "username": user, "password": password, "project_name": project,
                     "user_domain_name": "Default", "project_domain_name": "Default"},
            "region_name": REGION, "identity_api_version": 3}


def write_clouds_yaml(lay: Layout) -> None:
    clouds = {"realcloud": cloud_entry(lay, USER, PROJECT, lay.extra["demo_password"]),
              "realcloud-admin": cloud_entry(lay, "admin", "admin", lay.admin_password)}
    path = lay.base / "clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
    path.chmod(0o600)


def _until(what: str, check: Any, timeout: float = 180.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"realcloud: {what} not seen in {timeout:.0f} s")
        time.sleep(0.5)


def resources(lay: Layout) -> dict[str, Any]:
    """Flavors, the image, the networks; waits until nova's compute host and cinder's volume service are up."""
    admin = connect(lay)
    for name, vcpus, ram, disk in FLAVORS:
        admin.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    image = admin.image.create_image(name=IMAGE, disk_format="raw", container_format="bare", visibility="public",
                                     allow_duplicates=True)
    response = admin.image.put(f"/images/{image.id}/file", data=b"\0" * (1 << 20),
                               headers={"Content-Type": "application/octet-stream"})
    response.raise_for_status()
    # The guide's quota (8 GB RAM, 16 cores), as CADES gives a project and as the sandbox has it.
    admin.set_compute_quotas(lay.extra["demo_project_id"], ram=8192, cores=16)
    public = admin.network.create_network(name=PUBLIC, is_router_external=True, provider_network_type="flat",
                                          provider_physical_network="public")
    admin.network.create_subnet(network_id=public.id, name=f"{PUBLIC}-subnet", ip_version=4, cidr=PUBLIC_CIDR,
                                enable_dhcp=False)
    demo = connect(lay, USER, PROJECT, lay.extra["demo_password"])
    net = demo.network.create_network(name=NETWORK)
    subnet = demo.network.create_subnet(network_id=net.id, name=f"{NETWORK}-subnet", ip_version=4,
                                        cidr=SUBNET_CIDR)
    router = demo.network.create_router(name="router1", external_gateway_info={"network_id": public.id})
    router.add_interface(demo.network, subnet_id=subnet.id)
    _until("nova's compute host in a cell", lambda: list(admin.compute.hypervisors()))
    _until("cinder's volume service up", lambda: [s for s in admin.block_storage.services()
                                                  if s.binary == "cinder-volume" and s.state == "up"])
    _until("the image active", lambda: admin.image.get_image(image.id).status == "active")
    return {"image_id": image.id, "network_id": net.id, "public_id": public.id, "router_id": router.id}
