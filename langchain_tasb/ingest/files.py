"""Find the files to index under some folders: a sorted, filtered, loop-free walk.

:func:`iter_files` walks folders in a fixed (sorted) order and leaves out hidden entries,
unsupported or binary files, files outside ``include``/``exclude`` globs and symlinks that lead
outside the folders, counting each in a :class:`ScanStats`. :mod:`langchain_tasb.ingest.readers`
turns the files found into records.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = [
    "HTML_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "FileEntry",
    "ScanStats",
    "UnlistedFolder",
    "iter_files",
]

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".rst"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | {".jsonl", ".pdf"}

_SNIFF_BYTES = 8192  # a NUL byte in this many leading bytes marks a file as binary


# -- data -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileEntry:
    """A file found by :func:`iter_files`.

    Attributes:
        path: The file's resolved path.
        root: The resolved root (folder or file) it was found under.
        relpath: Its POSIX path relative to ``root``, through any followed symlink; the file's
            name if ``root`` is the file itself.
    """

    path: Path
    root: Path
    relpath: str

    @property
    def suffix(self) -> str:
        """The file's extension in lower case, with its dot (``".md"``)."""
        return Path(self.relpath).suffix.lower()


@dataclass(frozen=True)
class UnlistedFolder:
    """A folder :func:`iter_files` could not list.

    Attributes:
        path: The folder.
        root: The resolved root it lies under.
        relpath: Its POSIX path relative to ``root`` (``"."`` for the root itself).
        reason: Why it could not be listed.
    """

    path: Path
    root: Path
    relpath: str
    reason: str


@dataclass
class ScanStats:
    """What :func:`iter_files` found and left out.

    Attributes:
        files: Files yielded.
        hidden: Hidden files and folders (name starting with ``.``) left out, not their contents.
        unsupported: Files with an unsupported extension, and special files (sockets, FIFOs).
        binary: Files of a supported type with a NUL byte in their first 8 KiB.
        outside_symlinks: Symlinks to somewhere outside every root, not followed.
        excluded: Files and folders left out by ``include``/``exclude``.
        broken_symlinks: Symlinks to nothing, or to themselves.
        duplicates: Files and folders reached a second time (through a symlink or two
            overlapping roots); this is also how symlink loops end.
        unlisted: Folders that could not be listed, with the reason: their files were not
            seen, so nothing under their root may be taken for gone.
    """

    files: int = 0
    hidden: int = 0
    unsupported: int = 0
    binary: int = 0
    outside_symlinks: int = 0
    excluded: int = 0
    broken_symlinks: int = 0
    duplicates: int = 0
    unlisted: list[UnlistedFolder] = field(default_factory=list)


# -- finding files ----------------------------------------------------------------------------


def iter_files(
    roots: Sequence[str | os.PathLike[str]],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    *,
    stats: ScanStats | None = None,
) -> Iterator[FileEntry]:
    """Yield the supported files under ``roots``, recursively, in sorted order.

    Roots are walked in the order given, each depth-first with entries sorted by name. A
    hidden root is still walked: hiding applies to what is found inside.

    Patterns are ``fnmatch`` globs (``*`` also matches ``/``) matched against ``relpath``;
    ``**/`` also matches no folder at all (``**/*.md`` matches ``a.md``), and a pattern that
    matches a folder matches everything in it (``exclude=["build"]``). ``exclude`` wins over
    ``include``; with no ``include`` every file is included.

    Symlinks are followed when they resolve inside one of the roots, or anywhere with
    ``follow_symlinks``; a file or folder is never visited twice, so symlink loops end. The
    hidden rule and ``exclude`` apply to a link's target as well as to the link: to the
    target's path under its root, or to its absolute path when it lies outside every root.

    Args:
        roots: Folders (or single files) to scan.
        include: Keep only files whose ``relpath`` matches one of these globs.
        exclude: Leave out files and folders whose ``relpath`` matches one of these globs.
        follow_symlinks: Also follow symlinks that resolve outside every root.
        stats: Filled in with counts of what was yielded and left out, as the scan goes.

    Returns:
        An iterator of :class:`FileEntry`.

    Raises:
        FileNotFoundError: If a root does not exist (raised at once, before iterating).
    """
    if isinstance(roots, str | os.PathLike):  # one root given bare
        roots = [roots]
    resolved = [_resolve_root(root) for root in roots]
    scan = _Scan(
        roots=resolved,
        include=[_compile_glob(p) for p in include],
        exclude=[_compile_glob(p) for p in exclude],
        follow_symlinks=follow_symlinks,
        stats=stats if stats is not None else ScanStats(),
    )
    return scan.run()


def _resolve_root(root: str | os.PathLike[str]) -> Path:
    path = Path(root).expanduser()
    if not path.exists():
        msg = f"no such file or folder: {path}"
        raise FileNotFoundError(msg)
    return path.resolve()


def _compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile an fnmatch-style glob; ``**/`` may also match no folder at all."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern[i] == "*":
            out.append(".*")
            i += 1
        elif pattern[i] == "?":
            out.append(".")
            i += 1
        elif pattern[i] == "[" and (close := _class_end(pattern, i)) > 0:
            out.append(_char_class(pattern[i + 1 : close]))
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("(?s:" + "".join(out) + ")")


def _class_end(pattern: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start``, or -1 (a literal ``[``)."""
    i = start + 1
    if i < len(pattern) and pattern[i] == "!":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    return pattern.find("]", i)


def _char_class(body: str) -> str:
    negate = body.startswith("!")
    if negate:
        body = body[1:]
    escaped = "".join(f"\\{ch}" if ch in "\\^[]&~|" else ch for ch in body)
    return f"[{'^' if negate else ''}{escaped}]"


def _matches(patterns: Sequence[re.Pattern[str]], relpath: str) -> bool:
    """Whether a pattern matches ``relpath`` or one of the folders it lies in."""
    candidates = [relpath]
    parts = relpath.split("/")
    candidates += ["/".join(parts[:n]) for n in range(1, len(parts))]
    return any(p.fullmatch(c) for p in patterns for c in candidates)


@dataclass
class _Scan:
    roots: list[Path]
    include: list[re.Pattern[str]]
    exclude: list[re.Pattern[str]]
    follow_symlinks: bool
    stats: ScanStats
    seen: set[Path] = field(default_factory=set)

    def run(self) -> Iterator[FileEntry]:
        for root in self.roots:
            if root.is_dir():
                if root in self.seen:
                    self.stats.duplicates += 1
                    continue
                self.seen.add(root)
                yield from self._walk(root, root, "")
            else:
                yield from self._visit_file(root, root, root.name)

    def _walk(self, folder: Path, root: Path, relfolder: str) -> Iterator[FileEntry]:
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self._unlisted(folder, root, relfolder.rstrip("/") or ".", exc)
            return
        for name in names:
            relpath = f"{relfolder}{name}"
            if name.startswith("."):
                self.stats.hidden += 1
                continue
            try:  # a path too long to stat, an entry gone or locked meanwhile...
                target = self._follow(folder / name)
                is_dir = target is not None and target.is_dir()
            except OSError as exc:
                self._unlisted(folder / name, root, relpath, exc)
                continue
            if target is None:
                continue
            if is_dir:
                yield from self._visit_folder(target, root, relpath)
            else:
                yield from self._visit_file(target, root, relpath)

    def _unlisted(self, path: Path, root: Path, relpath: str, exc: OSError) -> None:
        """Count a folder (or entry) that could not be looked into; the run goes on."""
        logger.warning("cannot list %s: %s", path, exc)
        self.stats.unlisted.append(UnlistedFolder(path, root, relpath, exc.strerror or str(exc)))

    def _follow(self, path: Path) -> Path | None:
        """The path to visit for ``path``: itself, or a symlink's target if it may be followed."""
        if not path.is_symlink():
            return path
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):  # dangling, or a loop (RuntimeError before 3.13)
            self.stats.broken_symlinks += 1
            return None
        home = next((r for r in self.roots if _within(target, r)), None)
        if home is None and not self.follow_symlinks:
            self.stats.outside_symlinks += 1
            logger.debug("not following %s: it leads outside the roots", path)
            return None
        # The rules apply to where a link leads too, or a link could reach what they hide.
        where = target.relative_to(home).as_posix() if home else target.as_posix().lstrip("/")
        if any(part.startswith(".") for part in where.split("/") if part != "."):
            self.stats.hidden += 1
            logger.debug("not following %s: it leads to hidden %s", path, target)
            return None
        if self.exclude and where != "." and _matches(self.exclude, where):
            self.stats.excluded += 1
            logger.debug("not following %s: it leads to excluded %s", path, target)
            return None
        return target

    def _visit_folder(self, folder: Path, root: Path, relpath: str) -> Iterator[FileEntry]:
        if self.exclude and _matches(self.exclude, relpath):
            self.stats.excluded += 1
            return
        if folder in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(folder)
        yield from self._walk(folder, root, relpath + "/")

    def _visit_file(self, path: Path, root: Path, relpath: str) -> Iterator[FileEntry]:
        if _left_out(self.include, self.exclude, relpath):
            self.stats.excluded += 1
            return
        try:
            is_file = path.is_file()
        except OSError as exc:
            self._unlisted(path, root, relpath, exc)
            return
        if not is_file or Path(relpath).suffix.lower() not in SUPPORTED_EXTENSIONS:
            self.stats.unsupported += 1
            return
        if path in self.seen:
            self.stats.duplicates += 1
            return
        self.seen.add(path)
        if not relpath.lower().endswith(".pdf") and _looks_binary(path):
            self.stats.binary += 1
            return
        self.stats.files += 1
        yield FileEntry(path=path, root=root, relpath=relpath)


def _left_out(
    include: Sequence[re.Pattern[str]], exclude: Sequence[re.Pattern[str]], relpath: str
) -> bool:
    if exclude and _matches(exclude, relpath):
        return True
    return bool(include) and not _matches(include, relpath)


def _within(path: Path, root: Path) -> bool:
    return path == root or (root.is_dir() and path.is_relative_to(root))


def _looks_binary(path: Path) -> bool:
    """Whether the file has a NUL byte early on; unreadable files are left to the reader."""
    try:
        with path.open("rb") as handle:
            return b"\x00" in handle.read(_SNIFF_BYTES)
    except OSError:
        return False
