"""The settings: what they are and their defaults (`model`), the checks of each value
(`values`), and `load_settings`, which reads digest.yaml."""

from .load import load_settings
from .model import (
    DEFAULT_PATH,
    LIST_NAME,
    BounceSettings,
    DeliverySettings,
    DkimSettings,
    PostgresState,
    ScheduleSettings,
    Settings,
    SmtpSettings,
    SourceSettings,
    StateLocation,
    WebSettings,
    source_for,
)

__all__ = [
    "DEFAULT_PATH",
    "LIST_NAME",
    "BounceSettings",
    "DeliverySettings",
    "DkimSettings",
    "PostgresState",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "SourceSettings",
    "StateLocation",
    "WebSettings",
    "load_settings",
    "source_for",
]
