"""How ``uns up`` runs the computed tags: the settings' tags, and with the demo the demo plant's ones too."""

from __future__ import annotations

from model.config import Settings
from model.equipment import Plant
from model.transforms import ComputedTag
from uns.connect import ClientFactory
from uns.transforms.config import with_builtin
from uns.transforms.demo import builtin_tags
from uns.transforms.plan import plan_tags
from uns.transforms.service import ComputedTags

__all__ = ["check_computed_tags", "computed_tags"]


def _tags(settings: Settings) -> tuple[list[ComputedTag], tuple[ComputedTag, ...]]:
    """The tags ``uns up`` runs (the settings' and the built-in ones they do not replace), and the built-in ones."""
    builtin = builtin_tags(settings)
    return with_builtin(settings.transforms, builtin), builtin


def check_computed_tags(settings: Settings, plant: Plant) -> None:
    """The hub's computed tags checked against ``plant`` before anything starts, as ``computed_tags`` will.

    Raises:
        ConfigError: a tag is invalid (a path the plant file lacks ...), naming it and the field.
    """
    plan_tags(_tags(settings)[0], plant=plant)


def computed_tags(settings: Settings, plant: Plant, clients: ClientFactory) -> ComputedTags:
    """The hub's computed tags (not yet entered); ``uns up --config`` reloads them on SIGHUP (``hub.app``).

    Raises:
        ConfigError: a tag is invalid, naming it and the field.
    """
    tags, builtin = _tags(settings)
    return ComputedTags(
        tags=tags,
        builtin=builtin,
        plant=plant,
        clients=clients,
        enterprise=plant.enterprise.id,
        data_dir=settings.data_dir,
    )
