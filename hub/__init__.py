"""The composition root: the ``uns`` command line and the wiring of ``uns up``.

The one package that imports all the others (``model``, ``uns``, ``bridges``, ``demo``) to build a running
hub from settings: the broker, host, historian, MES, web, sinks, rules and computed tags of ``uns/``, the
bridges and the simulated plant of ``bridges/``, and the demo's business systems of ``demo/``. Nothing
imports it back, so the layers keep their direction: model <- uns <- bridges <- demo <- hub.
"""

__all__: list[str] = []
