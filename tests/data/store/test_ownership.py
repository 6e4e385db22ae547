"""What a store may touch (``tcdn.data.store``): only its own folder and files; damaged files are
found (by size on open, by CRC-32 with verify) and repaired by the next ingest."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tcdn.data.store import writer as ingest_mod
from tcdn.data.store.manifest import JOURNAL, MANIFEST, read_manifest
from tcdn.data.store.reader import open_store, store_problems
from tcdn.data.store.writer import ingest
from tcdn.errors import TcdnError
from tcdn.outputs import MARKER
from tests.conftest import naive_frames, store_settings


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_a_folder_of_other_files_is_refused_untouched(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    """The issue's example: a project folder with data/*.mp4, ingested into itself."""
    project = tmp_path / "project"
    make_video(project / "data" / "a.mp4", 6)
    make_video(project / "data" / "b.mp4", 6, seed=1)
    (project / "notes.txt").write_text("mine\n")
    before = _tree(project)
    with pytest.raises(TcdnError, match="not empty and is not a tcdn frame store"):
        ingest(project / "data", project, store_settings(), progress=False)
    assert _tree(project) == before


def test_a_store_leaves_files_it_did_not_write(
    make_video: Callable[..., Path], tmp_path: Path
) -> None:
    videos = tmp_path / "videos"
    make_video(videos / "a.mp4", 6)
    make_video(videos / "b.mp4", 6, seed=1)
    store = tmp_path / "store"
    ingest(videos, store, store_settings(), progress=False)
    assert json.loads((store / MARKER).read_text())["kind"] == "frame-store"
    mine = store / "data" / "my-notes.txt"
    mine.write_text("keep me\n")
    (videos / "b.mp4").unlink()  # its data file is the store's own: removed on the next run
    report = ingest(videos, store, store_settings(), progress=False)
    assert report.n_videos == 1
    assert mine.read_text() == "keep me\n"
    assert sorted(p.name for p in (store / "data").iterdir() if p.suffix == ".u8") == [
        read_manifest(store)["videos"][0]["key"] + ".u8"
    ]


def test_an_old_store_without_marker_is_still_a_store(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    ingest(synthetic_collection, store, store_settings(), progress=False)
    (store / MARKER).unlink()
    manifest = read_manifest(store)
    for v in manifest["videos"]:  # as written before sizes were recorded
        del v["files"]
    (store / MANIFEST).write_text(json.dumps(manifest))
    report = ingest(synthetic_collection, store, store_settings(), progress=False)
    assert report.reused == 6 and (store / MARKER).is_file()


@pytest.mark.parametrize("storage", ["raw", "jpeg"])
def test_a_truncated_data_file_is_found_and_repaired(
    synthetic_collection: Path, tmp_path: Path, storage: str
) -> None:
    store = tmp_path / "store"
    ingest(synthetic_collection, store, store_settings(storage), progress=False)
    whole = open_store(store).frames[:]
    video = read_manifest(store)["videos"][2]
    data = store / "data" / (video["key"] + (".u8" if storage == "raw" else ".jpg"))
    data.write_bytes(data.read_bytes()[:-100])
    with pytest.raises(TcdnError, match=r"damaged .*run the same `tcdn ingest` again") as info:
        open_store(store)
    assert video["name"] in str(info.value)
    report = ingest(synthetic_collection, store, store_settings(storage), progress=False)
    assert (report.decoded, report.reused) == (1, 5)
    np.testing.assert_array_equal(open_store(store).frames[:], whole)


def test_verify_finds_changed_contents_of_the_right_size(
    synthetic_collection: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    ingest(synthetic_collection, store, store_settings(), progress=False)
    assert store_problems(store) == []
    video = read_manifest(store)["videos"][0]
    data = store / "data" / f"{video['key']}.u8"
    blob = bytearray(data.read_bytes())
    blob[1000] ^= 0xFF
    data.write_bytes(bytes(blob))
    open_store(store)  # the size is right: opening does not read every byte
    problems = store_problems(store)
    assert len(problems) == 1 and "CRC-32" in problems[0] and video["name"] in problems[0]
    plain = ingest(synthetic_collection, store, store_settings(), progress=False)
    assert plain.decoded == 0  # a re-run checks sizes only
    fixed = ingest(synthetic_collection, store, store_settings(), progress=False, verify=True)
    assert (fixed.decoded, fixed.reused) == (1, 5)
    assert store_problems(store) == []
    np.testing.assert_array_equal(
        open_store(store).frames[:], naive_frames(open_store(store).videos)
    )


def test_the_journal_keeps_videos_finished_before_a_kill(
    synthetic_collection: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill leaves no chance to rewrite the manifest: the journal alone says what was done."""
    store = tmp_path / "store"
    real_run = ingest_mod._run

    def killed_after_two(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        for i, result in enumerate(real_run(*args, **kwargs)):  # type: ignore[arg-type]
            yield result
            if i == 1:
                raise SystemExit("killed")  # stands for SIGKILL: see below

    monkeypatch.setattr(ingest_mod, "_run", killed_after_two)
    monkeypatch.setattr(ingest_mod, "write_json_atomic", _only_first(ingest_mod.write_json_atomic))
    with pytest.raises(SystemExit):
        ingest(synthetic_collection, store, store_settings(), progress=False)
    assert read_manifest(store)["videos"] == []  # the manifest never saw a finished video
    assert len((store / JOURNAL).read_text().splitlines()) == 3  # header + 2 videos
    with (store / JOURNAL).open("a") as fh:
        fh.write('{"name": "cut short')  # the line a kill interrupted
    monkeypatch.undo()
    report = ingest(synthetic_collection, store, store_settings(), progress=False)
    assert (report.decoded, report.reused) == (4, 2)
    assert not (store / JOURNAL).exists()
    np.testing.assert_array_equal(
        open_store(store).frames[:], naive_frames(open_store(store).videos)
    )


def _only_first(write: Callable[..., None]) -> Callable[..., None]:
    calls = []

    def wrapped(*args: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            write(*args)

    return wrapped


def test_leftover_partials_are_removed(synthetic_collection: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(synthetic_collection, store, store_settings(), progress=False)
    key = read_manifest(store)["videos"][0]["key"]
    left = store / "data" / f".{key}.u8.partial"
    left.write_bytes(b"half")
    other = store / "data" / ".keep.partial"
    other.write_bytes(b"not ours")
    ingest(synthetic_collection, store, store_settings(), progress=False)
    assert not left.exists() and other.exists()


def test_copying_a_store_keeps_it_a_store(synthetic_collection: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(synthetic_collection, store, store_settings(), progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    assert ingest(synthetic_collection, copy, store_settings(), progress=False).reused == 6
