"""The demo's business systems: a real ERP, QMS and CMMS that ``uns up`` starts beside the simulated plant.

They are not bridges (nothing here speaks to a machine): the SQL and HTTP connectors read them like any
plant's business systems, so a newcomer sees the whole path from an ERP table to the MES views.
"""

__all__: list[str] = []
