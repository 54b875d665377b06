"""Exceptions a caller can catch and act on."""

from __future__ import annotations


class CollectionMismatchError(ValueError):
    """An existing Chroma collection cannot serve this model without misranking.

    Raised when its distance space is not ``ip``, or when it was filled by a model of another
    dimension or one that computes different vectors. The message says what was found, what
    was expected, and how to fix it.
    """


class SpaceMismatchError(CollectionMismatchError):
    """The collection's distance space is not inner product (``ip``)."""


class ModelMismatchError(CollectionMismatchError):
    """The collection was filled by another model or with another dimension."""


class ChromaUnavailableError(ConnectionError):
    """A Chroma server could not be reached; the message names its URL."""


class CollectionNotFoundError(ValueError):
    """A collection opened for reading does not exist; nothing was created.

    The message names the collection, where it was looked for, and the collections that do
    exist there.
    """


class StoreLockedError(OSError):
    """Another process is writing to this embedded Chroma folder.

    One process at a time may write an embedded (``persist_directory``) store; the message
    names the folder and the writer holding it (pid, host, command, start time).
    """
