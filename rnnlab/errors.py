"""Every rnnlab exception, in one module. RnnlabError and its subclasses carry the one line a user
sees (`rnnlab: error: ...`, exit status 2); RunStopped reports a run stopped on request."""

from __future__ import annotations

from pathlib import Path


class RnnlabError(Exception):
    """A user-facing problem: bad input, a missing or foreign file, an unusable device."""


class ConfigError(RnnlabError):
    """A config key has a wrong type, value or name."""


class ArchiveError(RnnlabError):
    """A file is missing, not an rnnlab archive, incomplete, or archives cannot be combined."""


class MissingArchive(ArchiveError, FileNotFoundError):
    """No file at an archive's path (also a FileNotFoundError: e.g. a live run's .partial that
    was just renamed into place)."""


class NotResumable(ArchiveError):
    """An unfinished archive that can never be resumed (complete already, unreadable, or of
    another schema): a sweep starts such a point over; a lock held by a live run is not this."""


class AnalysisError(RnnlabError, ValueError):
    """The input of an analysis function lacks a variable or dimension, or has a bad value."""


class ReportError(RnnlabError, ValueError):
    """The inputs of `write_report` cannot make a report (the message says why)."""


class SweepFailed(RnnlabError):
    """Some points of a sweep failed (each reported as it failed); the others finished."""


class RunStopped(Exception):  # noqa: N818 (a stop on request, reported as such)
    """A run stopped by SIGINT/SIGTERM (or a hard interrupt) with its committed records kept."""

    def __init__(self, partial: Path | None, epoch: int | None, epochs: int, signum: int) -> None:
        self.partial, self.epoch, self.epochs, self.signum = partial, epoch, epochs, signum
        super().__init__(self.message())

    def message(self) -> str:
        if self.partial is None or not self.partial.exists():
            return "interrupted before the archive was created; nothing was written"
        where = f" at epoch {self.epoch} of {self.epochs}" if self.epoch is not None else ""
        return (
            f"interrupted{where}; committed records are in {self.partial}; "
            f"continue with: rnnlab run --resume {self.partial}"
        )
