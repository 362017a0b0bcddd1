"""The MES adapter: MES events in, derived events from machine metrics, views and KPIs back into the UNS."""

__all__: list[str] = []
