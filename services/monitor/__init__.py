"""Lifeline monitoring services: the MQTT broker, the ingest process and its message checks."""
