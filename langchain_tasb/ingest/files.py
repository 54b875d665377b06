"""Find the files to index under some folders: a sorted, filtered, loop-free walk.

Patterns (``include``/``exclude``, ``.gitignore`` files) are read by pathspec, with git's rules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

logger = logging.getLogger(__name__)

TEXT_EXTENSIONS = frozenset({".txt", ".md", ".rst"})
HTML_EXTENSIONS = frozenset({".html", ".htm"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | HTML_EXTENSIONS | {".jsonl", ".pdf"}

_SNIFF_BYTES = 8192  # a NUL byte in this many leading bytes marks a file as binary


@dataclass(frozen=True)
class FileEntry:
    """A file found by :func:`iter_files`: its resolved ``path`` and ``root``, and ``relpath``.

    ``relpath`` is the POSIX path relative to ``root`` (the file's name if the root is the file).
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
    """A folder :func:`iter_files` could not list, under ``root``, and why (``reason``)."""

    path: Path
    root: Path
    relpath: str
    reason: str


@dataclass
class ScanStats:
    """What :func:`iter_files` yielded (``files``) and left out, file or folder, and why."""

    files: int = 0
    hidden: int = 0  # names starting with "." (not their contents)
    unsupported: int = 0  # other extensions, special files (sockets, FIFOs)
    binary: int = 0  # a NUL byte in the first 8 KiB
    outside_symlinks: int = 0  # leading outside every root, not followed
    excluded: int = 0  # by include/exclude
    ignored: int = 0  # by a .gitignore under a root
    broken_symlinks: int = 0  # leading to nothing, or to themselves
    duplicates: int = 0  # reached a second time (symlinks, overlapping roots)
    unlisted: list[UnlistedFolder] = field(default_factory=list)  # nothing under them is gone


def iter_files(
    roots: Sequence[str | os.PathLike[str]],
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_symlinks: bool = False,
    *,
    gitignore: bool = True,
    stats: ScanStats | None = None,
) -> Iterator[FileEntry]:
    """Yield the supported files under ``roots`` (folders or files), recursively, sorted.

    ``include``/``exclude`` are ``.gitignore`` lines matched against ``relpath``; ``exclude``
    wins. Each ``.gitignore`` under a root (``gitignore=True``) applies as git reads it.
    Symlinks are followed when they resolve inside a root (anywhere with ``follow_symlinks``),
    the hidden rule and ``exclude`` applying to their target too; nothing is visited twice.

    Raises:
        FileNotFoundError: If a root does not exist (raised at once, before iterating).
    """
    if isinstance(roots, str | os.PathLike):  # one root given bare
        roots = [roots]
    resolved = []
    for root in roots:
        path = Path(root).expanduser()
        if not path.exists():
            msg = f"no such file or folder: {path}"
            raise FileNotFoundError(msg)
        resolved.append(path.resolve())
    include_spec, exclude_spec = (
        pathspec.GitIgnoreSpec.from_lines(p) if p else None for p in (include, exclude)
    )
    stats = stats if stats is not None else ScanStats()
    return _Scan(resolved, include_spec, exclude_spec, follow_symlinks, gitignore, stats).run()


def _matches(spec: pathspec.GitIgnoreSpec | None, relpath: str, *, folder: bool = False) -> bool:
    return spec is not None and spec.match_file(relpath + "/" if folder else relpath)


# The .gitignore files above a folder: (their folder's relpath ending in "/", patterns).
_Ignores = tuple[tuple[str, pathspec.GitIgnoreSpec], ...]


def _ignored(ignores: _Ignores, relpath: str, *, folder: bool) -> bool:
    """Git's verdict: the deepest ``.gitignore`` with a pattern matching ``relpath`` decides."""
    verdict = False
    for base, spec in ignores:
        found = spec.check_file(relpath[len(base) :] + ("/" if folder else ""))
        if found.include is not None:
            verdict = found.include
    return verdict


@dataclass
class _Scan:
    roots: list[Path]
    include: pathspec.GitIgnoreSpec | None
    exclude: pathspec.GitIgnoreSpec | None
    follow_symlinks: bool
    gitignore: bool
    stats: ScanStats
    seen: set[Path] = field(default_factory=set)

    def run(self) -> Iterator[FileEntry]:
        for root in self.roots:
            if root.is_dir():
                if self._first_visit(root):
                    yield from self._walk(root, root, "", ())
            else:
                yield from self._visit_file(root, root, root.name)

    def _walk(
        self, folder: Path, root: Path, relfolder: str, ignores: _Ignores
    ) -> Iterator[FileEntry]:
        try:
            with os.scandir(folder) as entries:
                names = sorted(entry.name for entry in entries)
        except OSError as exc:
            self._unlisted(folder, root, relfolder.rstrip("/") or ".", exc)
            return
        if self.gitignore and ".gitignore" in names:
            ignores = self._read_gitignore(folder / ".gitignore", relfolder, ignores)
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
            if ignores and _ignored(ignores, relpath, folder=is_dir):
                self.stats.ignored += 1
                continue
            if not is_dir:
                yield from self._visit_file(target, root, relpath)
            elif _matches(self.exclude, relpath, folder=True):
                self.stats.excluded += 1
            elif self._first_visit(target):
                yield from self._walk(target, root, relpath + "/", ignores)

    def _read_gitignore(self, path: Path, relfolder: str, ignores: _Ignores) -> _Ignores:
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            logger.warning("cannot read %s (%s): its patterns are not applied", path, exc)
            return ignores
        return (*ignores, (relfolder, pathspec.GitIgnoreSpec.from_lines(lines)))

    def _first_visit(self, path: Path) -> bool:
        if path in self.seen:
            self.stats.duplicates += 1
            return False
        self.seen.add(path)
        return True

    def _unlisted(self, path: Path, root: Path, relpath: str, exc: OSError) -> None:
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
        if where != "." and _matches(self.exclude, where, folder=target.is_dir()):
            self.stats.excluded += 1
            logger.debug("not following %s: it leads to excluded %s", path, target)
            return None
        return target

    def _visit_file(self, path: Path, root: Path, relpath: str) -> Iterator[FileEntry]:
        if _matches(self.exclude, relpath) or (
            self.include is not None and not _matches(self.include, relpath)
        ):
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
        if not self._first_visit(path):
            return
        if not relpath.lower().endswith(".pdf") and _looks_binary(path):
            self.stats.binary += 1
            return
        self.stats.files += 1
        yield FileEntry(path=path, root=root, relpath=relpath)


def _within(path: Path, root: Path) -> bool:
    return path == root or (root.is_dir() and path.is_relative_to(root))


def _looks_binary(path: Path) -> bool:  # unreadable files are left to the reader
    try:
        with path.open("rb") as handle:
            return b"\x00" in handle.read(_SNIFF_BYTES)
    except OSError:
        return False
