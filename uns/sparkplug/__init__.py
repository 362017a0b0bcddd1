"""Sparkplug B: topics and payloads, encoded and decoded with no I/O."""
