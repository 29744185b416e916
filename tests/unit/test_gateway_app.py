"""The gateway's loop: uploads and deliveries never queue behind long polls; the sweep runs on demand."""
import threading

import pytest

from cxr_gateway.app import Gateway
from cxr_gateway.config import GatewayConfig
from cxr_local.waiting import wait_until
from pydicom.uid import generate_uid

from tests.gateway_support import image_instance
from tests.unit.test_gateway_pipeline import FakeApi, FlakySender


def frontal() -> bytes:
    return image_instance(generate_uid(), ViewPosition="PA")


class SlowJobs(FakeApi):
    """Every long poll waits until the test releases it, as a job still running would."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def job(self, job_id, wait=None):
        self.release.wait(10)
        return {"id": job_id, "status": "COMPLETED"}


@pytest.fixture
def config(tmp_path):
    return GatewayConfig(allowed_aets=["PACS"], store_path=str(tmp_path / "s.sqlite3"), workers=2, poll_workers=2,
                         allow_stand_in=False)


def test_uploads_go_on_while_every_poll_thread_waits_and_all_is_delivered(config):
    api, sender = SlowJobs(), FlakySender()
    gateway = Gateway(config, client=api, sender=sender)
    gateway.start(serve_dicom=False, serve_http=False)
    try:
        for _ in range(6):
            assert gateway.receiver.receive(frontal()).status == "accepted"
        wait_until(lambda: len(api.uploads) == 6, 30, what="6 uploads")  # with both poll threads blocked
        assert gateway.store.backlog()["by_state"]["submitted"] == 6
        api.release.set()
        wait_until(lambda: len(sender.sent) == 6, 30, what="6 deliveries")
        wait_until(lambda: gateway.store.backlog()["pending"] == 0, 30, what="an empty backlog")
    finally:
        api.release.set()
        gateway.stop()


def test_the_sweep_deletes_what_outlived_its_ttl(config):
    now = [1000.0]
    gateway = Gateway(config, client=FakeApi(), sender=FlakySender(), clock=lambda: now[0])
    try:
        gateway.receiver.receive(frontal())
        assert gateway.sweep() == 0
        now[0] += config.store_ttl_hours * 3600
        assert gateway.sweep() == 1 and gateway.store.backlog()["pending"] == 0
        assert gateway.metrics.snapshot()["counts"]["swept"] == 1
    finally:
        gateway.stop()
