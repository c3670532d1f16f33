"""Live view through WHEP in headless Chromium: a High-profile camera (GStreamer x264enc) plays."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.cameras.conftest import camera_config, gst_server  # noqa: F401 - fixture
from tests.waiting import wait_for_blocking

WHEP_JS = """
async ([url, token]) => {
  const caps = RTCRtpReceiver.getCapabilities('video').codecs
    .filter(c => c.mimeType === 'video/H264').map(c => c.sdpFmtpLine);
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.appendChild(video);
  pc.ontrack = (ev) => { video.srcObject = ev.streams[0] || new MediaStream([ev.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(r => { if (pc.iceGatheringState === 'complete') r(); else pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
  const res = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}, body: pc.localDescription.sdp});
  const answer = await res.text();
  if (res.status !== 201) return {status: res.status, answer, caps};
  await pc.setRemoteDescription({type: 'answer', sdp: answer});
  window.__video = video; window.__pc = pc;
  return {status: res.status, location: res.headers.get('Location'), answer, caps};
}
"""


@pytest.mark.parametrize("profile", ["high", "main"])
def test_chromium_plays_high_profile_camera(gst_server: Any,  # noqa: F811 - the fixture imported above
                                             make_config: Any, start_live_gateway: Any, anonymous_page: Any, profile: str) -> None:
    srv = gst_server(profile)
    live = start_live_gateway(camera_config(make_config, {"cam1": srv.url}, segment_s=60))
    live.add_user("mon", "monitor")
    token = live.token("mon")
    h = {"Authorization": f"Bearer {token}"}
    wait_for_blocking(lambda: httpx.get(f"{live.url}/api/cameras", headers=h).json()[0]["state"] == "online", what="the camera online", interval=0.2)
    page = anonymous_page(live)
    page.goto("/healthz")
    got = page.evaluate(WHEP_JS, [f"{live.url}/api/cameras/cam1/whep", token])
    assert got["caps"], "this Chromium cannot decode H.264 at all"
    assert got["status"] == 201, got
    # the camera's profile where the browser offers it, else Main as the label (see streams/live.py)
    offered = {c.split("profile-level-id=")[1][:2] for c in got["caps"]}
    want = ("64" if "64" in offered else "4d") if profile == "high" else "4d"
    assert f"profile-level-id={want}" in got["answer"], got["answer"]
    assert "42e01f" not in got["answer"] and "VP8" not in got["answer"]
    try:
        page.wait_for_function("() => window.__video && window.__video.videoWidth > 0 && window.__video.currentTime > 1", timeout=20_000)
    except Exception:
        stats = page.evaluate("""async () => { const out = [window.__pc.connectionState, window.__pc.iceConnectionState];
            (await window.__pc.getStats()).forEach(r => { if (r.type === 'inbound-rtp' || r.type === 'candidate-pair') out.push(JSON.stringify(r)); });
            return out; }""")
        raise AssertionError(f"video did not play: {stats}") from None
    assert page.evaluate("() => window.__video.videoWidth") == 320
    t1 = page.evaluate("() => window.__video.currentTime")
    page.wait_for_function(f"() => window.__video.currentTime > {t1} + 0.5", timeout=10_000)
    assert httpx.delete(f"{live.url}{got['location']}", headers=h).status_code == 200
    assert httpx.delete(f"{live.url}{got['location']}", headers=h).status_code == 404
