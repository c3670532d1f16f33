"""Media work on camera packets: recorder, live relay, sampler."""
