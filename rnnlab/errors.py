"""Exceptions whose message is the one line a user sees (`rnnlab: error: ...`, exit status 2)."""


class RnnlabError(Exception):
    """A user-facing problem: bad input, a missing or foreign file, an unusable device."""


class ConfigError(RnnlabError):
    """A config key has a wrong type, value or name."""


class ArchiveError(RnnlabError):
    """A file is missing, not an rnnlab archive, incomplete, or archives cannot be combined."""
