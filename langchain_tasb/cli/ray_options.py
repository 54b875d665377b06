"""``tasb index --ray``: the options that move encoding and writing onto Ray workers."""

from __future__ import annotations

import argparse

from langchain_tasb.cli.common import non_negative_float, positive_int
from langchain_tasb.ingest import RayIndexing

__all__ = ["add_ray_options", "ray_settings"]


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray``, ``--ray-workers`` and ``--ray-gpus-per-worker`` to ``tasb index``."""
    ray = parser.add_argument_group("encoding on Ray (needs langchain-tasb[ray] and --chroma-url)")
    ray.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="encode and write on Ray Data workers: 'local' starts Ray here for the run, "
        "'auto' joins the cluster `ray start` made, or ray://HOST:PORT; reading, chunking, "
        "the manifest and --prune stay here",
    )
    ray.add_argument(
        "--ray-workers",
        type=positive_int,
        metavar="N",
        help="Ray workers, each with one copy of the model (default 1)",
    )
    ray.add_argument(
        "--ray-gpus-per-worker",
        type=non_negative_float,
        metavar="F",
        help="GPUs each worker asks Ray for, a fraction to share one (default 0: CPU)",
    )


def ray_settings(args: argparse.Namespace) -> RayIndexing | None:
    """``--ray``, ``--ray-workers``, ``--ray-gpus-per-worker``; None without ``--ray``.

    Raises:
        ValueError: A Ray option without ``--ray``, or ``--ray`` without ``--chroma-url``.
    """
    if args.ray is None:
        for option, value in (
            ("--ray-workers", args.ray_workers),
            ("--ray-gpus-per-worker", args.ray_gpus_per_worker),
        ):
            if value is not None:
                msg = f"{option} applies to --ray only: add --ray local (or auto, or ray://...)"
                raise ValueError(msg)
        return None
    if not args.chroma_url:
        msg = (
            f"--ray {args.ray} needs --chroma-url: Ray workers write to a Chroma server, not to "
            "an embedded --db. Start one (`chroma run --path DIR --port 8000`) and pass "
            "--chroma-url http://HOST:8000"
        )
        raise ValueError(msg)
    return RayIndexing(
        address=args.ray,
        workers=args.ray_workers or 1,
        gpus_per_worker=args.ray_gpus_per_worker or 0.0,
    )
