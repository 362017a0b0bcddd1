"""The query kit the historian, the MES adapter, the sinks' history and the web share.

``timespec.py`` reads times, windows and zones, ``args.py`` a query's parameters and writes its JSON document,
``values.py`` types stored values and turns MQTT filters into SQL, ``cli.py`` answers from a shell (the file,
or the running hub over HTTP) and renders a table, JSON or CSV. Its argument errors are a branch of
``uns.errors`` (``QueryError``: ``BadArgument``, ``UnknownSeries``), so a caller names neither the historian
nor the MES to catch them.
"""

__all__: list[str] = []
