"""A small RTSP server (RFC 2326) for simulated cameras: see simulators/rtsp/server.py."""
