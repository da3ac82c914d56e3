"""The settings: what they are and their defaults (`model`), the checks of each value
(`values`), and `load_settings`, which reads digest.yaml."""

from .load import load_settings
from .model import (
    DEFAULT_PATH,
    LIST_NAME,
    BounceSettings,
    DeliverySettings,
    DkimSettings,
    ScheduleSettings,
    Settings,
    SmtpSettings,
    SourceSettings,
    WebSettings,
)

__all__ = [
    "DEFAULT_PATH",
    "LIST_NAME",
    "BounceSettings",
    "DeliverySettings",
    "DkimSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "SourceSettings",
    "WebSettings",
    "load_settings",
]
