"""Device simulators and the scenario runner (gateway-sim)."""
