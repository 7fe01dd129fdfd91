"""Configuration: conf/totp.properties, conf/carbon.xml and the environment, read once at start into
one typed :class:`~totpadmin.config.settings.Settings` object."""

from .errors import ConfigError
from .settings import CarbonSettings, Settings, TotpSettings

__all__ = ["ConfigError", "CarbonSettings", "Settings", "TotpSettings"]
