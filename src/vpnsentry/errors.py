"""Exceptions and exit codes, in one place.

::

    VpnSentryError                 exit 2  (a user mistake: bad option, missing file)
    ├── UsageError                 exit 2
    ├── InputError                 exit 3  (input unreadable: no such file, not a log)
    ├── StoreError                 exit 4  (store busy, corrupt, or an engine error)
    └── ParserContractError        exit 70 (a parser bug; only raised with --strict)

    partial success: exit 1 (some lines quarantined or some files unreadable)

The CLI maps these to one-line messages; tracebacks are only shown with ``--debug``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README and ``vpnsentry --help``."""

    OK = 0
    PARTIAL = 1  # work done, but some input was quarantined or unreadable
    USAGE = 2
    INPUT = 3
    STORE = 4
    INTERNAL = 70


class VpnSentryError(Exception):
    """Base of every error we raise on purpose; carries its exit code."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(VpnSentryError):
    """The user asked for something that cannot be done as asked."""


class InputError(VpnSentryError):
    """An input path is missing or unreadable."""

    exit_code = ExitCode.INPUT


class StoreError(VpnSentryError):
    """The store cannot be opened, is locked by another writer, or the engine failed."""

    exit_code = ExitCode.STORE


class ParserContractError(VpnSentryError):
    """A parser broke the contract of parse/base.py: a bug, never the input's fault."""

    exit_code = ExitCode.INTERNAL
