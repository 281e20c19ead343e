"""Projection: each agency's lawful view of a person, the audit log, replay and statistics."""
