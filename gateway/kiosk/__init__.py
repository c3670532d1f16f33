"""What kiosk terminals do beyond the wire protocol of drivers/kiosk: pairing with a one-time
code, and check-ins made exactly once by the terminal's own reference."""
