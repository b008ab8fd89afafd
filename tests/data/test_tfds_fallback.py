"""The connectivity probe that keeps offline loads from hanging on tensorflow-datasets."""

from __future__ import annotations

import socket
import threading

from tfresnet.data import tfds_fallback


def test_probe_gives_up_on_a_hanging_connection(monkeypatch):
    release = threading.Event()

    def hang(*args, **kwargs):
        release.wait(30)  # a black-holed network: nothing answers
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    try:
        assert tfds_fallback.network_available(timeout=0.2) is False
    finally:
        release.set()


def test_probe_reports_refused_and_open_connections(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert tfds_fallback.network_available(timeout=1) is False

    class Connection:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: Connection())
    assert tfds_fallback.network_available(timeout=1) is True


def test_probe_goes_through_the_https_proxy(monkeypatch):
    seen = []

    def record(address, timeout):
        seen.append(address)
        raise OSError

    monkeypatch.setattr(socket, "create_connection", record)
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    tfds_fallback.network_available(timeout=1)
    assert seen == [("proxy.internal", 3128)]
