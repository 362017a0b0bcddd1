"""The demo plant shipped with uns-hub (read with importlib.resources)."""
