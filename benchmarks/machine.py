"""What machine and library versions a benchmark ran on (standard library only)."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata

DEFAULT_PACKAGES = ("torch", "onnxruntime", "transformers", "sentence-transformers")


def cpu_name() -> str:
    """The CPU's model name from ``lscpu``, else what ``platform`` knows."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def versions(packages: tuple[str, ...] = DEFAULT_PACKAGES) -> str:
    """``"name version"`` for each package, ``"name absent"`` where it is not installed."""
    found = []
    for name in packages:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)
