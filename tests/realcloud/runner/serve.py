"""Run ONE real OpenStack service on 127.0.0.1 — executed by the realcloud venv's Python, not the project's.

    python serve.py SERVICE CONFIG_DIR PORT

SERVICE is keystone, glance, placement, nova, neutron or cinder. The service's WSGI application is built from the
config in CONFIG_DIR exactly as uWSGI would build it; nova also runs its conductor, scheduler and compute
(`fake.FakeDriver`) in this process, cinder its scheduler and volume service (the in-tree fake driver), all over
oslo.messaging's in-process `fake://` transport. This file imports nothing of the project: only the services.
"""
from __future__ import annotations

import os
import sys

SERVICE, CONF_DIR, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
EVENTLET = SERVICE in {"nova", "cinder"}  # nova 34 boots only in eventlet mode over sqlite (REALCLOUD.md)

if EVENTLET:
    if SERVICE == "nova":
        os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "0"
        os.environ["OS_NOVA_CONFIG_DIR"] = CONF_DIR
        os.environ["OS_NOVA_CONFIG_FILES"] = os.path.join(sys.prefix, "etc/nova/api-paste.ini") + ";nova.conf"
        sys.argv = ["nova-api", "--config-file", os.path.join(CONF_DIR, "nova.conf")]
        from nova import monkey_patch

        monkey_patch.patch(backend="eventlet")
    else:
        import eventlet

        eventlet.monkey_patch()


def serve_threaded(app: object) -> None:
    """Serve a WSGI app on 127.0.0.1:PORT with one native thread per connection (HTTP/1.1, chunked bodies)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Handler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

    server = make_server("127.0.0.1", PORT, app, threaded=True, request_handler=Handler)  # type: ignore[arg-type]
    print(f"{SERVICE} serving on 127.0.0.1:{PORT}", flush=True)
    server.serve_forever()


def serve_green(app: object) -> None:
    """Serve a WSGI app on 127.0.0.1:PORT with eventlet's server (the process is monkey-patched)."""
    import eventlet
    import eventlet.wsgi

    sock = eventlet.listen(("127.0.0.1", PORT))
    print(f"{SERVICE} serving on 127.0.0.1:{PORT}", flush=True)
    eventlet.wsgi.server(sock, app, log=sys.stderr, max_size=200)


def keystone() -> None:
    os.environ["OS_KEYSTONE_CONFIG_FILES"] = os.path.join(CONF_DIR, "keystone.conf")
    sys.argv = ["keystone"]
    from keystone.server.wsgi import initialize_public_application

    serve_threaded(initialize_public_application())


def glance() -> None:
    os.environ["OS_GLANCE_CONFIG_DIR"] = CONF_DIR
    sys.argv = ["glance-api"]
    from glance.common import wsgi_app

    serve_threaded(wsgi_app.init_app())


def placement() -> None:
    os.environ["OS_PLACEMENT_CONFIG_DIR"] = CONF_DIR
    sys.argv = ["placement-api"]
    from placement import wsgi

    serve_threaded(wsgi.init_application())


def neutron() -> None:
    os.environ["OS_NEUTRON_CONFIG_DIR"] = CONF_DIR
    os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf"
    sys.argv = ["neutron-api"]
    from neutron import server
    from neutron.server import api

    serve_threaded(server.boot_server(api.api_server, prog="neutron-api"))


def nova() -> None:
    from nova import objects, service
    from nova.api.openstack import wsgi_app
    from nova.compute import rpcapi as compute_rpcapi

    app = wsgi_app.init_application("osapi_compute", "nova-api-os-compute")
    objects.register_all()
    started = [
        service.Service.create(binary="nova-conductor", topic="conductor"),
        service.Service.create(binary="nova-scheduler", topic="scheduler"),
        # The compute also serves 'compute-alt', or a floating IP never shows in `server show` (REALCLOUD.md).
        service.Service.create(binary="nova-compute", topic=compute_rpcapi.RPC_TOPIC,
                               topic_alt=compute_rpcapi.RPC_TOPIC_ALT),
    ]
    for svc in started:
        svc.start()
    serve_green(app)


def _cinder_no_qemu_img() -> None:
    """Cinder's create-from-image without `sudo qemu-img` (there is neither sudo nor qemu-img here).

    `qemu_img_info` asks a privsep daemon (through sudo) for the format, then runs `qemu-img info`: here oslo.utils'
    pure-Python format inspector answers both, with its safety check, as qemu-img's JSON. The fake driver's
    `copy_image_to_volume` (the LVM driver's: `qemu-img convert` onto a logical volume) downloads the image from
    Glance for real, inspects it the same way, checks it fits the volume, and writes nothing (no disk here)."""
    import json
    import tempfile

    from cinder import exception
    from cinder.image import image_utils
    from cinder.tests import fake_driver
    from oslo_utils import imageutils
    from oslo_utils.imageutils import format_inspector

    def qemu_img_info(path, run_as_root=True, force_share=False, allow_qcow2_backing_file=False,
                      img_format=None):
        inspector = format_inspector.detect_file_format(path)
        inspector.safety_check()
        return imageutils.QemuImgInfo(json.dumps({
            "filename": path, "format": img_format or inspector.NAME, "virtual-size": inspector.virtual_size,
            "actual-size": os.path.getsize(path)}))

    def copy_image_to_volume(self, context, volume, image_service, image_id, disable_sparse=False):
        with tempfile.NamedTemporaryFile(prefix="cinder-image-") as tmp:
            image_service.download(context, image_id, tmp)
            tmp.flush()
            info = qemu_img_info(tmp.name)
            if info.virtual_size > volume.size * 1024**3:
                raise exception.ImageUnacceptable(image_id=image_id, reason="image larger than the volume")

    image_utils.qemu_img_info = qemu_img_info
    fake_driver.FakeLoggingVolumeDriver.copy_image_to_volume = copy_image_to_volume


def _cinder_own_service_ids() -> None:
    """Two cinder services in one process: each reports its own heartbeat (cinder keeps the id class-wide)."""
    import threading

    from cinder import service

    lock = threading.Lock()
    report = service.Service.report_state

    def report_state(self) -> None:
        with lock:
            service.Service.service_id = self.origin_service_id
            report(self)

    service.Service.report_state = report_state


def cinder() -> None:
    os.environ["OS_CINDER_CONFIG_DIR"] = CONF_DIR
    sys.argv = ["cinder-api", "--config-file", os.path.join(CONF_DIR, "cinder.conf")]
    from cinder.wsgi import wsgi

    app = wsgi.initialize_application()
    from cinder import service
    from oslo_config import cfg

    _cinder_no_qemu_img()
    _cinder_own_service_ids()
    backend = "fake"
    started = [
        service.Service.create(binary="cinder-scheduler"),
        service.Service.create(host=f"{cfg.CONF.host}@{backend}", service_name=backend, binary="cinder-volume",
                               coordination=True),
    ]
    for svc in started:
        svc.start()
    serve_green(app)


if __name__ == "__main__":
    {"keystone": keystone, "glance": glance, "placement": placement, "nova": nova, "neutron": neutron,
     "cinder": cinder}[SERVICE]()
