"""Kiosks: heartbeats, idempotent event batches, check-in alerts and scheduled check-ins
(`session.KioskDriver`; the composition root builds it with the recognition service the
check-in routes use)."""
