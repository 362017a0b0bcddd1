"""uns-hub: the Unified Namespace hub (broker, Sparkplug host, historian, MES, web)."""
