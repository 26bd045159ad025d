"""Running the bot as a service: logs, error reporting, metrics and health."""
