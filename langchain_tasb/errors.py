"""Exceptions a caller can catch and act on."""


class CollectionMismatchError(ValueError):
    """An existing collection would misrank: its space is not ``ip``, or another model filled it."""


class SpaceMismatchError(CollectionMismatchError):
    """The collection's distance space is not inner product (``ip``)."""


class ModelMismatchError(CollectionMismatchError):
    """The collection was filled by another model or with another dimension."""


class ChromaUnavailableError(ConnectionError):
    """A Chroma server could not be reached; the message names its URL."""


class CollectionNotFoundError(ValueError):
    """A collection opened for reading does not exist; nothing was created."""


class StoreLockedError(OSError):
    """Another process is writing to this embedded Chroma folder (the message names it)."""
