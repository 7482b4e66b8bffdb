"""Same seed → same content, table by table; another seed → other content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from events.io import part_files
from simulator import SimulationSummary, WorldConfig, simulate
from simulator.run import TABLES

World = tuple[Path, SimulationSummary]


def content_hashes(out: Path) -> dict[str, str]:
    """A hash of each table's content (schema and values, part by part), independent of file metadata."""
    hashes = {}
    for name in TABLES:
        digest = hashlib.sha256()
        for part in part_files(out, name):
            table = pq.read_table(part)
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
                writer.write_table(table.replace_schema_metadata(None))
            digest.update(sink.getvalue().to_pybytes())
        hashes[name] = digest.hexdigest()
    return hashes


def test_same_seed_same_content(small_world: World, tmp_path: Path) -> None:
    out, summary = small_world
    again = simulate(WorldConfig(accounts=4000, months=6, seed=7, chunk_accounts=2000), tmp_path / "again")
    assert content_hashes(out) == content_hashes(tmp_path / "again")
    same = {"generation_seconds", "peak_rss_mb"}
    assert summary.model_dump(exclude=same) == again.model_dump(exclude=same)


def test_another_seed_changes_every_table(small_world: World, tmp_path: Path) -> None:
    simulate(WorldConfig(accounts=4000, months=6, seed=8, chunk_accounts=2000), tmp_path / "other")
    first, other = content_hashes(small_world[0]), content_hashes(tmp_path / "other")
    assert all(first[name] != other[name] for name in TABLES)


def test_blocks_do_not_depend_on_each_other(small_world: World, tmp_path: Path) -> None:
    """The first block of a bigger world is the same as the first block of a smaller one."""
    simulate(WorldConfig(accounts=2000, months=6, seed=7, chunk_accounts=2000), tmp_path / "one")
    for name in TABLES:
        first_block = pq.read_table(part_files(small_world[0], name)[0])
        alone = pq.read_table(part_files(tmp_path / "one", name)[0])
        assert first_block.equals(alone), name
