"""Tests of the Sparkplug B codec."""
