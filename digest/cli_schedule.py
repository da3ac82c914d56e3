"""`digest` commands for the schedule feature (registered on the main group)."""
