"""Telemetry sources: each parses its own inbound messages and keeps only the fields that may leave."""
