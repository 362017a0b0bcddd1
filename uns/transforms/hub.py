"""How ``uns up`` runs the computed tags: the settings' tags, and with the demo the demo plant's ones too."""

from __future__ import annotations

from model.config import Settings
from model.equipment import Plant
from uns.connect import ClientFactory
from uns.transforms.config import with_builtin
from uns.transforms.demo import DEMO_TAGS
from uns.transforms.service import ComputedTags

__all__ = ["computed_tags"]


def computed_tags(settings: Settings, plant: Plant, clients: ClientFactory) -> ComputedTags:
    """The hub's computed tags (not yet entered); ``uns up --config`` reloads them on SIGHUP (``hub.app``).

    Raises:
        ConfigError: a tag is invalid, naming it and the field.
    """
    builtin = DEMO_TAGS if settings.demo else ()
    return ComputedTags(
        tags=with_builtin(settings.transforms, builtin),
        builtin=builtin,
        plant=plant,
        clients=clients,
        enterprise=plant.enterprise.id,
        data_dir=settings.data_dir,
    )
