"""``tasb index --ray`` options and the Ray settings, checked before Ray or Chroma start."""

from __future__ import annotations

import argparse
import pickle

import chromadb
import pytest

from langchain_tasb.chroma.client import ServerAddress
from langchain_tasb.cli.index import ray_settings
from langchain_tasb.ingest import RayIndexing


def _args(**given: object) -> argparse.Namespace:
    values = {"ray": None, "ray_workers": None, "ray_gpus_per_worker": None, "chroma_url": None}
    return argparse.Namespace(**{**values, **given})


def test_ray_needs_a_chroma_server_and_ray_options_need_ray() -> None:
    with pytest.raises(ValueError, match="--ray auto needs --chroma-url"):
        ray_settings(_args(ray="auto"))
    with pytest.raises(ValueError, match="--ray-workers applies to --ray only"):
        ray_settings(_args(ray_workers=2, chroma_url="http://h:8000"))
    assert ray_settings(_args()) is None
    settings = ray_settings(
        _args(ray="ray://head:10001", ray_workers=3, ray_gpus_per_worker=0.5, chroma_url="h")
    )
    assert settings == RayIndexing("ray://head:10001", workers=3, gpus_per_worker=0.5)


def test_ray_settings_name_each_bad_value() -> None:
    with pytest.raises(ValueError, match=r"workers must be at least 1, got 0.*gpus_per_worker"):
        RayIndexing(workers=0, gpus_per_worker=-1)
    with pytest.raises(ValueError, match="address must be"):
        RayIndexing(address=" ")


def test_an_embedded_store_cannot_be_written_by_other_processes(tmp_path: object) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path))
    with pytest.raises(ValueError, match=r"start a Chroma server .*--chroma-url"):
        ServerAddress.of(client)


def test_a_server_address_pickles_and_hides_its_headers() -> None:
    address = ServerAddress("h", 8000, headers={"Authorization": "Bearer SECRET"})
    assert pickle.loads(pickle.dumps(address)) == address  # noqa: S301  (our own bytes)
    assert "SECRET" not in repr(address)
