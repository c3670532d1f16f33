"""Users, roles, tokens, device keys."""
