"""Adapters every service shares: settings, auth, tracing, logs, SQL, the bus and the relay."""
