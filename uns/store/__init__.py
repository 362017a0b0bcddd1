"""The hub's one DuckDB file, shared by the historian, the MES adapter and the alarm history as peers.

``database.py`` opens it (lock help, memory bounds, readers, ``register_arrow``, ``insert_arrow``),
``migrations.py`` runs each component's own migrations (declared in ``<package>/schema.py``) and
``writer.py`` is the one writer thread every component submits its writes to.
"""

__all__: list[str] = []
