"""A GStreamer RTSP server (the third-party camera for tests); run it with the SYSTEM python.

usage: /usr/bin/python3 gst_rtsp_server.py PORT PROFILE [USER PASSWORD] [--size=WxH] [--audio]
Serves /cam (x264enc output of the given profile, 15 fps) until killed; prints READY when listening.
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
args = [a for a in sys.argv[1:] if not a.startswith("--")]
size = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--size=")), "320x240")
w, h = size.split("x")
port, profile = args[0], args[1]
server = GstRtspServer.RTSPServer()
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(
    f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={w},height={h},framerate=15/1 "
    f"! x264enc tune=zerolatency speed-preset=superfast key-int-max=15 bitrate=300 "
    f"! video/x-h264,profile={profile} ! rtph264pay name=pay0 pt=96 config-interval=1 "
    + ("audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 "
       "! avenc_aac ! rtpmp4gpay name=pay1 pt=97 " if "--audio" in sys.argv else "")
    + ")"
)
factory.set_shared(True)
if len(args) >= 4:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args[2], args[3]), token)
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)  # digest only: the client must do digest
    auth.add_digest(args[2], args[3], token)
    server.set_auth(auth)
    perm = GstRtspServer.RTSPPermissions()
    perm.add_role_from_structure(Gst.Structure.from_string("user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true")[0])
    factory.set_permissions(perm)
server.get_mount_points().add_factory("/cam", factory)
server.attach(None)
print("READY", flush=True)
GLib.MainLoop().run()
