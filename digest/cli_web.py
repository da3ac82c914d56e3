"""`digest` commands for the web feature (registered on the main group)."""
