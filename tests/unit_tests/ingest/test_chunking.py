from __future__ import annotations

import itertools
import random
import re
from typing import Any

import pytest
from transformers import BertTokenizerFast

from langchain_tasb.ingest.chunking import Chunk, TokenChunker
from langchain_tasb.testing import tiny_vocabulary

# Words in the vocabulary (one token each) and words that are not (one token per letter).
KNOWN = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "data",
    "model",
    "search",
    "query",
    "index",
    "vector",
    "file",
    "memory",
]
UNKNOWN = ["xylophone", "quux", "zebra", "blorp", "frobnicate", "wug"]


@pytest.fixture(scope="module")
def tokenizer() -> BertTokenizerFast:
    vocab = {token: i for i, token in enumerate(tiny_vocabulary())}
    return BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)


def tokens(tokenizer: BertTokenizerFast, text: str) -> list[str]:
    encoding = tokenizer(text, add_special_tokens=False)
    return list(encoding.tokens())


def make_text(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    out = []
    for _ in range(paragraphs):
        sentences = []
        for _ in range(rng.randint(1, 6)):
            words = [rng.choice(KNOWN + UNKNOWN) for _ in range(rng.randint(3, 25))]
            sentences.append(" ".join(words).capitalize() + rng.choice(".!?,"))
        out.append(" ".join(sentences))
    return "\n\n".join(out)


def check_chunks(
    tokenizer: BertTokenizerFast, text: str, chunks: list[Chunk], max_tokens: int
) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert chunk.text
    counts = tokenizer([c.text for c in chunks], add_special_tokens=False)["input_ids"]
    assert max(len(ids) for ids in counts) <= max_tokens
    # Everything but whitespace is in some chunk, in order.
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start
        assert not text[before.end : after.start].strip()
    assert not text[: chunks[0].start].strip()
    assert not text[chunks[-1].end :].strip()


def check_overlap(
    tokenizer: BertTokenizerFast, text: str, chunks: list[Chunk], overlap: int
) -> None:
    for before, after in itertools.pairwise(chunks):
        if after.start >= before.end:
            # Only when the last word alone has more pieces than the overlap allows.
            last_word = re.search(r"\w+\Z", before.text)
            assert last_word, "consecutive chunks should overlap"
            assert len(tokens(tokenizer, last_word.group())) > overlap
            continue
        shared = tokens(tokenizer, text[after.start : before.end])
        assert 0 < len(shared) <= overlap
        assert tokens(tokenizer, before.text)[-len(shared) :] == shared
        assert tokens(tokenizer, after.text)[: len(shared)] == shared


def test_overlap_must_be_below_max_tokens(tokenizer: BertTokenizerFast) -> None:
    with pytest.raises(ValueError, match=r"overlap_tokens \(64\) must be smaller than max_tokens"):
        TokenChunker(tokenizer, max_tokens=64, overlap_tokens=64)
    with pytest.raises(ValueError, match="max_tokens must be at least 1"):
        TokenChunker(tokenizer, max_tokens=0, overlap_tokens=0)
    with pytest.raises(ValueError, match="must not be negative"):
        TokenChunker(tokenizer, max_tokens=10, overlap_tokens=-1)


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t \n"])
def test_blank_text_gives_no_chunks(tokenizer: BertTokenizerFast, text: str) -> None:
    assert TokenChunker(tokenizer, max_tokens=16, overlap_tokens=4).split(text) == []


def test_text_that_fits_is_one_stripped_chunk(tokenizer: BertTokenizerFast) -> None:
    text = "\n  The data model.\n\nSearch the index!  \n"
    [chunk] = TokenChunker(tokenizer, max_tokens=16, overlap_tokens=4).split(text)
    assert chunk == Chunk(text="The data model.\n\nSearch the index!", start=3, end=37, index=0)
    assert text[chunk.start : chunk.end] == chunk.text


@pytest.mark.parametrize(("max_tokens", "overlap"), [(30, 5), (62, 16), (126, 32), (254, 0)])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_chunks_fit_map_back_and_overlap(
    tokenizer: BertTokenizerFast, max_tokens: int, overlap: int, seed: int
) -> None:
    text = make_text(seed, paragraphs=40)
    chunks = TokenChunker(tokenizer, max_tokens=max_tokens, overlap_tokens=overlap).split(text)
    assert len(chunks) > 3
    check_chunks(tokenizer, text, chunks, max_tokens)
    if overlap:
        check_overlap(tokenizer, text, chunks, overlap)
    else:
        for before, after in itertools.pairwise(chunks):
            assert before.end <= after.start


def test_cuts_at_paragraph_break_when_there_is_one(tokenizer: BertTokenizerFast) -> None:
    first = "The data model is in the index. " * 8  # 56 tokens
    second = "Search the vector file of the memory. " * 8
    text = first.strip() + "\n\n" + second.strip()
    chunks = TokenChunker(tokenizer, max_tokens=100, overlap_tokens=8).split(text)
    assert chunks[0].text == first.strip()
    assert chunks[-1].text.endswith(second.strip())
    check_chunks(tokenizer, text, chunks, 100)


def test_cuts_at_sentence_end_before_plain_whitespace(tokenizer: BertTokenizerFast) -> None:
    text = "the data model " * 25 + "is here. " + "search the index " * 30
    chunks = TokenChunker(tokenizer, max_tokens=100, overlap_tokens=8).split(text)
    assert chunks[0].text.endswith("is here.")
    check_chunks(tokenizer, text, chunks, 100)


def test_never_cuts_between_word_pieces(tokenizer: BertTokenizerFast) -> None:
    word = "zyxwvutsrqponm"  # not in the vocabulary: 14 tokens, z ##y ##x ...
    assert len(tokens(tokenizer, word)) == len(word)
    for lead in range(85, 100):  # the 100-token budget ends somewhere inside the word
        text = "the " * lead + word + " of" * 150
        chunks = TokenChunker(tokenizer, max_tokens=100, overlap_tokens=10).split(text)
        check_chunks(tokenizer, text, chunks, 100)
        for chunk in chunks:
            assert not tokens(tokenizer, chunk.text)[0].startswith("##")
            assert chunk.start == 0 or not text[chunk.start - 1].isalnum()
            assert chunk.end == len(text) or not text[chunk.end].isalnum()
        assert any(word in chunk.text for chunk in chunks)


def test_word_longer_than_the_budget_is_cut_into_fitting_chunks(
    tokenizer: BertTokenizerFast,
) -> None:
    text = "the data " + "abcdefghij" * 9 + " model"  # a 90-piece word
    chunks = TokenChunker(tokenizer, max_tokens=20, overlap_tokens=4).split(text)
    check_chunks(tokenizer, text, chunks, 20)
    assert "".join(c.text for c in chunks[1:-1]) in text


def test_no_word_ids_falls_back_to_character_classes(tokenizer: BertTokenizerFast) -> None:
    def plain(
        text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False
    ) -> dict[str, Any]:
        encoding = tokenizer(
            text,
            add_special_tokens=add_special_tokens,
            return_offsets_mapping=return_offsets_mapping,
        )
        return dict(encoding)  # no word_ids(), and no ``verbose`` keyword

    text = make_text(3, paragraphs=20)
    expected = TokenChunker(tokenizer, max_tokens=50, overlap_tokens=8).split(text)
    assert TokenChunker(plain, max_tokens=50, overlap_tokens=8).split(text) == expected


def test_small_windows_give_the_same_chunks(tokenizer: BertTokenizerFast) -> None:
    text = make_text(4, paragraphs=200)
    whole = TokenChunker(tokenizer, max_tokens=62, overlap_tokens=12).split(text)
    windowed = TokenChunker(tokenizer, max_tokens=62, overlap_tokens=12, window_chars=1500)
    assert windowed.split(text) == whole
    # A window without whitespace to cut at, and one smaller than a chunk, still work.
    solid = "abcdefghij" * 500
    chunks = TokenChunker(tokenizer, max_tokens=62, overlap_tokens=12, window_chars=100)
    check_chunks(tokenizer, solid, chunks.split(solid), 62)


def test_one_megabyte_text(tokenizer: BertTokenizerFast) -> None:
    text = make_text(5, paragraphs=400)
    text = (text + "\n\n") * (1_000_000 // len(text) + 1)
    text = text[:1_000_000]
    chunker = TokenChunker(tokenizer, max_tokens=510, overlap_tokens=32)
    chunks = chunker.split(text)
    total = len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    assert total / 510 < len(chunks) < total / (510 - 32) * 2
    check_chunks(tokenizer, text, chunks, 510)
