"""Errors shared by the config loader and the experiment sources it opens (its own module, so a
source such as MLflow can raise them without importing the config loader back)."""


class ConfigError(ValueError):
    """A bad config; the message is one paragraph naming file, field and fix."""
