"""Device drivers: transport + pure decoder + session per device kind. Never import gateway.api."""
