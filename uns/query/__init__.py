"""The query kit the historian, the MES adapter, the sinks' history and the web share: time windows and zones.

Its argument errors are a branch of ``uns.errors`` (``QueryError``: ``BadArgument``, ``UnknownSeries``), so a
caller names neither the historian nor the MES to catch them.
"""

__all__: list[str] = []
