"""Trackers: GPS devices over MQTT (NMEA 0183 and OwnTracks), the position filter,
geofences, curfews, liveness and status alerts. `driver.TrackerDriver` is the area;
the composition root (gateway/assembly.py) builds it. See docs/trackers.md."""
