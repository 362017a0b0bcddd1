"""Sinks: the UNS out to other stores (PostgreSQL, InfluxDB, SQL insert, REST, AMQP), acknowledging after commit.

Import from the modules (``uns.sinks.registry``, ``uns.sinks.service``, ``uns.sinks.writer``): the package itself
imports nothing, so a command that needs only ``uns.sinks.template`` (the rules' webhook bodies) does not load
every sink's database driver.
"""

__all__: list[str] = []
