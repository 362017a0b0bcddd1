"""Data models: the ISA-95 plant, the UNS topic, the value envelope, MES events and settings."""
