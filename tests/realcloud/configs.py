"""The config files of the six real services, as text (written into the tier's temp dir by `services.py`).

Every listener is 127.0.0.1; every database a sqlite file under the base dir; nova's and cinder's internal RPC is
oslo.messaging's in-process `fake://` transport; each API is behind keystonemiddleware's `auth_token`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("keystone", "glance", "placement", "neutron", "nova", "cinder")
REGION = "RegionOne"


@dataclass
class Layout:
    """Where everything of one run lives, the ports and the secrets (all under `base`, mode 0700)."""

    base: Path
    ports: dict[str, int]
    admin_password: str
    service_password: str
    venv: Path
    extra: dict[str, str] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def keystone(self) -> str:
        return self.url("keystone") + "/v3"

    def dir(self, service: str) -> Path:
        return self.base / service

    def db(self, name: str) -> str:
        return f"sqlite:///{self.base / 'db' / name}.db"


def _auth(lay: Layout, user: str, section: str, **more: str) -> str:
    """A keystoneauth password section for service user `user`."""
    lines = [f"[{section}]", "auth_type = password", f"auth_url = {lay.keystone}", f"username = {user}",
             f"password = {lay.service_password}", "project_name = service", "user_domain_name = Default",
             "project_domain_name = Default", f"region_name = {REGION}"]
    lines += [f"{k} = {v}" for k, v in more.items()]
    return "\n".join(lines) + "\n"


def _authtoken(lay: Layout, user: str, **more: str) -> str:
    return _auth(lay, user, "keystone_authtoken", www_authenticate_uri=lay.keystone,
                 service_token_roles_required="True", **more)


def _common(lay: Layout, service: str) -> str:
    return (f"[DEFAULT]\ndebug = False\nuse_stderr = True\nstate_path = {lay.dir(service)}\n"
            f"[oslo_concurrency]\nlock_path = {lay.dir(service) / 'locks'}\n"
            "[oslo_messaging_notifications]\ndriver = noop\n")


def keystone(lay: Layout) -> str:
    d = lay.dir("keystone")
    return (_common(lay, "keystone") + f"[database]\nconnection = {lay.db('keystone')}\n"
            f"[token]\nprovider = fernet\n[fernet_tokens]\nkey_repository = {d / 'fernet-keys'}\n"
            f"[fernet_receipts]\nkey_repository = {d / 'fernet-receipts'}\n"
            f"[credential]\nkey_repository = {d / 'credential-keys'}\n"
            # totp for the v3totp and v3multifactor sign-ins; the rest are keystone's defaults.
            "[auth]\nmethods = external,password,token,oauth1,mapped,application_credential,totp\n"
            # bcrypt's fewest rounds: every test user and every password sign-in hashes once (throw-away passwords).
            "[identity]\npassword_hash_rounds = 4\n")


def glance(lay: Layout) -> str:
    d = lay.dir("glance")
    return (_common(lay, "glance").replace("[DEFAULT]\n", "[DEFAULT]\nenabled_backends = fs:file\n", 1)
            + f"[database]\nconnection = {lay.db('glance')}\n" + _authtoken(lay, "glance")
            + f"[paste_deploy]\nflavor = keystone\nconfig_file = {lay.venv / 'etc/glance/glance-api-paste.ini'}\n"
            f"[glance_store]\ndefault_backend = fs\n[fs]\nfilesystem_store_datadir = {d / 'images'}\n"
            f"[os_glance_staging_store]\nfilesystem_store_datadir = {d / 'staging'}\n"
            f"[os_glance_tasks_store]\nfilesystem_store_datadir = {d / 'tasks'}\n")


def placement(lay: Layout) -> str:
    return (_common(lay, "placement") + f"[placement_database]\nconnection = {lay.db('placement')}\n"
            "[api]\nauth_strategy = keystone\n" + _authtoken(lay, "placement"))


def neutron(lay: Layout) -> str:
    return (_common(lay, "neutron").replace("[DEFAULT]\n", "[DEFAULT]\n"
            "core_plugin = ml2\nservice_plugins = router\ntransport_url = fake:/\nauth_strategy = keystone\n"
            f"api_paste_config = {lay.venv / 'etc/neutron/api-paste.ini'}\n"
            "notify_nova_on_port_status_changes = True\nnotify_nova_on_port_data_changes = True\n"
            "dhcp_agent_notification = False\nallow_overlapping_ips = True\nhost = realcloud\n", 1)
            + f"[database]\nconnection = {lay.db('neutron')}\n" + _authtoken(lay, "neutron")
            # Neutron tells nova when a port goes ACTIVE (os-server-external-events).
            + _auth(lay, "neutron", "nova", endpoint_type="public")
            + "[ml2]\ntype_drivers = flat,vxlan\ntenant_network_types = vxlan\n"
            "mechanism_drivers = cades_realcloud_bind\nextension_drivers = port_security\n"
            "[ml2_type_flat]\nflat_networks = public\n[ml2_type_vxlan]\nvni_ranges = 1:1000\n"
            "[securitygroup]\nenable_security_group = True\n")


def nova(lay: Layout) -> str:
    return (_common(lay, "nova").replace("[DEFAULT]\n", "[DEFAULT]\n"
            "compute_driver = fake.FakeDriver\ntransport_url = fake:/\nhost = realcloud\nmy_ip = 127.0.0.1\n"
            f"instances_path = {lay.dir('nova') / 'instances'}\n"
            # One compute host: resize lands on the same host (REALCLOUD.md).
            "allow_resize_to_same_host = True\nconcurrency_backend = eventlet\n", 1)
            + f"[api_database]\nconnection = {lay.db('nova_api')}\n[database]\nconnection = {lay.db('nova')}\n"
            + f"[wsgi]\napi_paste_config = {lay.venv / 'etc/nova/api-paste.ini'}\n"
            + "[api]\nauth_strategy = keystone\n" + _authtoken(lay, "nova", service_type="compute")
            + _auth(lay, "nova", "placement", valid_interfaces="public")
            + _auth(lay, "nova", "neutron", valid_interfaces="public")
            + _auth(lay, "nova", "cinder", catalog_info="block-storage:cinder:publicURL", os_region_name=REGION)
            + "[glance]\nvalid_interfaces = public\n"
            # A service token to cinder, or a detach fails with 409 ConflictNovaUsingAttachment (REALCLOUD.md).
            + _auth(lay, "nova", "service_user", send_service_user_token="True")
            + "[scheduler]\ndiscover_hosts_in_cells_interval = 2\n"
            + "[vnc]\nenabled = False\n[spice]\nenabled = False\n[serial_console]\nenabled = False\n"
            + "[upgrade_levels]\ncompute = auto\n")


def cinder(lay: Layout) -> str:
    return (_common(lay, "cinder").replace("[DEFAULT]\n", "[DEFAULT]\n"
            "transport_url = fake:/\nauth_strategy = keystone\nhost = realcloud\nenabled_backends = fake\n"
            f"api_paste_config = {lay.venv / 'etc/cinder/api-paste.ini'}\n"
            "glance_catalog_info = image:glance:publicURL\n"
            # the filters the API accepts on lists (?name=...), as a deployment installs them with cinder
            f"resource_query_filters_file = {lay.venv / 'etc/cinder/resource_filters.json'}\n"
            "osapi_volume_listen = 127.0.0.1\nmy_ip = 127.0.0.1\n", 1)
            + f"[database]\nconnection = {lay.db('cinder')}\n" + _authtoken(lay, "cinder")
            + _auth(lay, "cinder", "nova", interface="public")
            + f"[coordination]\nbackend_url = file://{lay.dir('cinder') / 'coordination'}\n"
            + "[fake]\nvolume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver\n"
            "volume_backend_name = fake\n")


FILES = {"keystone": ("keystone.conf", keystone), "glance": ("glance-api.conf", glance),
         "placement": ("placement.conf", placement), "neutron": ("neutron.conf", neutron),
         "nova": ("nova.conf", nova), "cinder": ("cinder.conf", cinder)}


def write_all(lay: Layout) -> dict[str, Path]:
    """Write every service's config into its own dir; returns the config file of each."""
    written = {}
    (lay.base / "db").mkdir(parents=True, exist_ok=True)
    for service, (name, render) in FILES.items():
        d = lay.dir(service)
        (d / "locks").mkdir(parents=True, exist_ok=True)
        path = d / name
        path.write_text(render(lay))
        written[service] = path
    return written
