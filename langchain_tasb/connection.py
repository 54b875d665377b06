"""Where Chroma lives: the connection fields every skin takes (langchain-chroma's, and ``url``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from langchain_tasb.chroma.client import DEFAULT_TIMEOUT, connect, parse_chroma_url

# A str is tried as a SecretStr first, so every header value is hidden from repr and dumps.
_Secret = Annotated[SecretStr | str, Field(union_mode="left_to_right")]


class Connection(BaseModel):
    """One of ``client``, ``persist_directory``, ``url`` or ``host``; in memory when none."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    persist_directory: str | None = None
    """Embedded Chroma directory."""
    host: str | None = None
    """Chroma server host."""
    port: int | None = None
    """Chroma server port (default 8000)."""
    ssl: bool = False
    """Use https for the Chroma server."""
    url: str | None = None
    """Chroma server URL, ``http(s)://HOST[:PORT]`` (instead of ``host``/``port``/``ssl``)."""
    headers: dict[str, _Secret] | None = None
    """Extra HTTP headers for the Chroma server. Values are kept as ``SecretStr`` so that
    ``repr``, dumps and traces show ``**********``; only the Chroma client gets them."""
    client: Any = None
    """A ready Chroma client."""

    @classmethod
    def pop_from(cls, options: dict[str, Any]) -> Connection:
        """The connection fields found in ``options``, removed from it (other keys stay)."""
        return cls(**{key: options.pop(key) for key in CONNECTION_FIELDS if key in options})

    def given(self) -> bool:
        """Whether a place is named (a client, a directory or a server)."""
        places = (self.persist_directory, self.host, self.url, self.client)
        return any(place is not None for place in places)

    def connect(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The Chroma client these fields name (``timeout``: seconds per server request).

        Raises:
            ValueError: Several places are named, or ``url`` is malformed.
            ChromaUnavailableError: The server did not answer.
        """
        host, port, ssl = self.host, self.port, self.ssl
        if self.url is not None:
            if host is not None:
                msg = f"Pass url= or host=/port=, not both (got url={self.url!r}, host={host!r})"
                raise ValueError(msg)
            host, port, ssl = parse_chroma_url(self.url)
        headers = {
            key: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in (self.headers or {}).items()
        }
        return connect(
            client=self.client,
            persist_directory=self.persist_directory,
            host=host,
            port=port,
            ssl=ssl,
            headers=headers,
            timeout=timeout,
        )


CONNECTION_FIELDS: tuple[str, ...] = tuple(Connection.model_fields)
"""The connection fields' names."""
