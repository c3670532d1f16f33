"""The Mosquitto access control the project ships (config/mosquitto/acl) against a real
Mosquitto with an account per device: a tracker may publish only under its own id (so it
cannot speak for another), the gateway's account reads every tracker and writes its own
topics, and an anonymous client gets nothing in."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import ROOT, free_port, port_open, require_peer
from tests.gps.helpers import MOSQUITTO, _user_line, uid
from tests.waiting import wait_for_blocking

ACL = ROOT / "config" / "mosquitto" / "acl"


@pytest.fixture
def broker(tmp_path: Path) -> tuple[int, dict[str, str]]:
    require_peer(Path(MOSQUITTO).exists() and shutil.which("mosquitto_passwd") is not None, "mosquitto and mosquitto_passwd")
    accounts = {"gateway": f"gw-{uid()}", "trk-1": f"one-{uid()}", "trk-2": f"two-{uid()}"}
    passwd = tmp_path / "passwd"
    for i, (user, password) in enumerate(accounts.items()):
        subprocess.run(["mosquitto_passwd", "-b", *(["-c"] if i == 0 else []), str(passwd), user, password], check=True, capture_output=True)
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwd}\nacl_file {ACL}\n{_user_line()}\nlog_dest stderr\n")
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_blocking(lambda: port_open("127.0.0.1", port) or proc.poll() is not None, 10, "mosquitto listening")
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        yield port, accounts
    finally:
        proc.terminate()
        proc.wait(10)


def _client(port: int, user: str | None, password: str | None) -> tuple[paho.Client, list[tuple[str, bytes]], threading.Event, list[int]]:
    got: list[tuple[str, bytes]] = []
    up = threading.Event()
    refused: list[int] = []
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"acl-{uid()}", clean_session=True)
    if user is not None:
        c.username_pw_set(user, password)

    def on_connect(client: paho.Client, userdata: object, flags: object, rc: paho.ReasonCode, props: object) -> None:
        if rc.is_failure:
            refused.append(rc.value)
        up.set()

    c.on_connect = on_connect
    c.on_message = lambda client, userdata, msg: got.append((msg.topic, bytes(msg.payload)))
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert up.wait(10)
    return c, got, up, refused


def test_a_tracker_publishes_only_as_itself(broker: tuple[int, dict[str, str]]) -> None:
    port, accounts = broker
    gw, got, _, refused = _client(port, "gateway", accounts["gateway"])
    assert refused == []
    sub = gw.subscribe([("trackers/#", 1), ("owntracks/#", 1)])
    assert sub[0] == paho.MQTT_ERR_SUCCESS
    one, _, _, _ = _client(port, "trk-1", accounts["trk-1"])
    try:
        # acknowledged after the SUBSCRIBE sent before it (a connection's packets are handled
        # in order): from here the gateway's subscriptions are in place
        gw.publish("gateway/devices/trk-1/state", b"online", qos=1, retain=True).wait_for_publish(10)
        for topic in ("trackers/trk-2/nmea", "trackers/trk-2/status", "owntracks/u/trk-2", "gateway/alerts/red/sos/p1", "trackers/trk-1/nmea"):
            one.publish(topic, topic.encode(), qos=1).wait_for_publish(10)
        # the last one is allowed: once it has arrived, the ones before it would have too
        wait_for_blocking(lambda: ("trackers/trk-1/nmea", b"trackers/trk-1/nmea") in got, 10, "the tracker's own message")
        assert [t for t, _ in got] == ["trackers/trk-1/nmea"]
        one.publish("owntracks/phone/trk-1", b"{}", qos=1).wait_for_publish(10)
        wait_for_blocking(lambda: any(t == "owntracks/phone/trk-1" for t, _ in got), 10, "its OwnTracks message")
    finally:
        for c in (gw, one):
            c.disconnect()
            c.loop_stop()


def test_no_way_in_without_an_account(broker: tuple[int, dict[str, str]]) -> None:
    port, accounts = broker
    for user, password in ((None, None), ("trk-1", "wrong"), ("intruder", "x")):
        c, _, _, refused = _client(port, user, password)
        c.loop_stop()
        assert refused, (user, "connected")
