"""Protocol bridges: Sparkplug B edge nodes in front of machines."""
