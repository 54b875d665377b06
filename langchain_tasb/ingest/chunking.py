"""Chunking with the model's own tokenizer: chunks fit its input limit, cut between words."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Kinds of boundary between two consecutive tokens, from "never cut here" to "best place".
_INSIDE_WORD = 0  # between a token and its continuation piece (``##ing``)
_TOKEN = 1  # between two words with nothing in between ("end" | ".")
_SPACE = 2  # whitespace in between
_SENTENCE = 3  # whitespace after ". ! ?" (and closing quotes or brackets)
_PARAGRAPH = 4  # a blank line in between

_SENTENCE_END = re.compile(r"[.!?\u2026][\"'\u201d\u2019)\]]{0,2}\Z")

_DEFAULT_WINDOW_CHARS = 200_000  # tokenized at a time, so memory stays bounded
_WINDOW_CUT_SEARCH = 10_000  # how far back from a window's end to look for whitespace


@dataclass(frozen=True)
class Chunk:
    """One piece of a source text, stripped: ``source[start:end] == text``; ``index`` from 0."""

    text: str
    start: int
    end: int
    index: int


@dataclass
class _Window:  # tokens of a window of ``text``, with offsets into the whole text
    text: str
    starts: list[int]
    ends: list[int]
    continues: list[bool]  # continues[i]: token i continues the word of token i - 1
    final: bool  # the window reaches the end of the text
    limit: int  # last boundary index that later text cannot change

    def __len__(self) -> int:
        return len(self.starts)

    def kind(self, i: int) -> int:  # of the boundary before token i (0 < i < len(self))
        if self.continues[i]:
            return _INSIDE_WORD
        prev_end = self.ends[i - 1]
        gap = self.text[prev_end : self.starts[i]]
        if not any(ch.isspace() for ch in gap):
            return _TOKEN
        if gap.count("\n") >= 2:
            return _PARAGRAPH
        if _SENTENCE_END.search(self.text, max(0, prev_end - 3), prev_end):
            return _SENTENCE
        return _SPACE


class TokenChunker:
    """Split texts into chunks that fit a token budget, cutting at natural boundaries.

    Args:
        tokenizer: The model's fast tokenizer, or a callable like it whose result maps
            ``input_ids`` and ``offset_mapping`` (and tells words apart with ``word_ids()``).
        max_tokens: Most tokens per chunk (the model's input limit minus ``[CLS]``, ``[SEP]``).
        overlap_tokens: Most tokens consecutive chunks share (from a word start); below
            ``max_tokens``.
        window_chars: Characters tokenized at a time; bounds memory on very long texts.

    Raises:
        ValueError: If a setting is out of range (the message names it).
    """

    def __init__(
        self,
        tokenizer: Callable[..., Any],
        max_tokens: int,
        overlap_tokens: int = 32,
        *,
        window_chars: int = _DEFAULT_WINDOW_CHARS,
    ) -> None:
        for name, value in (("max_tokens", max_tokens), ("window_chars", window_chars)):
            if value < 1:
                msg = f"{name} must be at least 1, got {value}"
                raise ValueError(msg)
        if overlap_tokens < 0:
            msg = f"overlap_tokens must not be negative, got {overlap_tokens}"
            raise ValueError(msg)
        if overlap_tokens >= max_tokens:
            msg = (
                f"overlap_tokens ({overlap_tokens}) must be smaller than max_tokens ({max_tokens}),"
                " or chunking could not move forward"
            )
            raise ValueError(msg)
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.window_chars = window_chars

    def split(self, text: str) -> list[Chunk]:
        """The chunks of ``text`` in order: one if the text fits, none if it is blank."""
        return list(self.iter_chunks(text))

    def iter_chunks(self, text: str) -> Iterator[Chunk]:
        """Yield the chunks of ``text`` one by one, as :meth:`split` returns them."""
        pos = index = 0
        while True:
            window = self._window_at(text, pos)
            if not len(window):
                return
            start = 0
            while True:
                if window.final and len(window) - start <= self.max_tokens:
                    yield self._make_chunk(window, start, len(window), index)
                    return
                if not window.final and start + self.max_tokens > window.limit:
                    break
                chunk, end = self._fitting_chunk(window, start, index)
                yield chunk
                index += 1
                start = self._next_start(window, start, end)
            pos = window.starts[start]

    def _encode(self, text: str, *, offsets: bool = False) -> Any:
        settings = {"add_special_tokens": False, "return_offsets_mapping": offsets}
        try:  # verbose=False: no "sequence too long" warning
            return self._tokenizer(text, verbose=False, **settings)
        except TypeError:  # not a transformers tokenizer: no ``verbose`` keyword
            return self._tokenizer(text, **settings)

    def _window_at(self, text: str, pos: int) -> _Window:
        """Tokenize a window starting at ``pos``, growing it until a chunk fits in it."""
        size = self.window_chars
        while True:
            stop = pos + size
            if stop >= len(text):
                return self._tokenize(text, pos, len(text), final=True)
            # Move the end back to just before whitespace, so no word is cut, if it can.
            back = range(stop - 1, max(pos, stop - _WINDOW_CUT_SEARCH), -1)
            stop = next((i for i in back if text[i].isspace()), stop)
            window = self._tokenize(text, pos, stop, final=False)
            if window.limit >= self.max_tokens:
                return window
            size *= 2

    def _tokenize(self, text: str, pos: int, stop: int, *, final: bool) -> _Window:
        encoding = self._encode(text[pos:stop], offsets=True)
        spans: Sequence[Sequence[int]] = encoding["offset_mapping"]
        starts = [pos + span[0] for span in spans]
        ends = [pos + span[1] for span in spans]
        continues = _continuations(encoding, text, starts, ends)
        limit = len(starts)
        if not final:
            # The last word may go on past ``stop``: only cut before it.
            limit = next((i for i in range(len(starts) - 1, -1, -1) if not continues[i]), 0)
        return _Window(text, starts, ends, continues, final, limit)

    def _fitting_chunk(self, window: _Window, start: int, index: int) -> tuple[Chunk, int]:
        """The chunk from token ``start`` at the best cut, checked by re-tokenizing it."""
        end = self._best_end(window, start)
        while True:
            chunk = self._make_chunk(window, start, end, index)
            if end - start <= 1 or len(self._encode(chunk.text)["input_ids"]) <= self.max_tokens:
                return chunk, end
            # Re-tokenized alone the chunk came out longer (tokenizers that depend on context).
            logger.debug("chunk %d re-tokenizes to more than %d tokens", index, self.max_tokens)
            end = next((i for i in range(end - 1, start, -1) if window.kind(i) >= _TOKEN), end - 1)

    def _best_end(self, window: _Window, start: int) -> int:
        """The end token (exclusive) of the chunk from token ``start``: its best cut.

        A paragraph break, else a sentence end, in the upper half of the budget; else the
        latest whitespace, else the latest word boundary, else the budget's end.
        """
        top = start + self.max_tokens
        half = start + max(self.max_tokens // 2, self.overlap_tokens + 1)
        low = start + self.overlap_tokens + 1  # the next chunk must start after ``start``
        cuts = [(window.kind(i), i) for i in range(top, low - 1, -1)]
        upper = cuts[: top - half + 1]
        spans = ((_PARAGRAPH, upper), (_SENTENCE, upper), (_SPACE, cuts), (_TOKEN, cuts))
        return next((i for want, span in spans for kind, i in span if kind >= want), top)

    def _next_start(self, window: _Window, start: int, end: int) -> int:
        """First token of the next chunk: the earliest word start in the overlap."""
        first = max(end - self.overlap_tokens, start + 1)
        cuts = (i for want in (_SPACE, _TOKEN) for i in range(first, end) if window.kind(i) >= want)
        return next(cuts, end)

    def _make_chunk(self, window: _Window, start: int, end: int, index: int) -> Chunk:
        raw = window.text[window.starts[start] : window.ends[end - 1]]
        first = window.starts[start] + len(raw) - len(raw.lstrip())
        text = raw.strip()
        return Chunk(text=text, start=first, end=first + len(text), index=index)


def _continuations(encoding: Any, text: str, starts: list[int], ends: list[int]) -> list[bool]:
    """For each token, whether it continues the word of the token before it."""
    try:  # a slow tokenizer's encoding has no word ids
        word_ids: list[int | None] | None = list(encoding.word_ids())
    except (AttributeError, ValueError, TypeError):
        word_ids = None
    if word_ids is not None and len(word_ids) == len(starts):
        return [False] + [
            word_ids[i] is not None and word_ids[i] == word_ids[i - 1]
            for i in range(1, len(word_ids))
        ]
    # Else a token continues a word when it touches it, letters or digits on both sides.
    return [False] + [
        0 < starts[i] == ends[i - 1] < len(text) and text[starts[i] - 1 : starts[i] + 1].isalnum()
        for i in range(1, len(starts))
    ]
