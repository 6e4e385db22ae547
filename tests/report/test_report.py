"""The report (``tcdn.report``): its data, its page, escaping, and a real browser loading it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tcdn.data.collection import VideoEntry
from tcdn.data.frameset import FrameSet, Positions
from tcdn.discovery.config import DiscoverConfig
from tcdn.discovery.pipeline import discover_features
from tcdn.discovery.results import write_results
from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.report.page import build_report
from tcdn.report.prepare import sample_rows, write_report
from tests.report.chromium import chromium, find_chromium

EVIL = "<script>alert(1)</script>.mp4"
NAMES = [EVIL, "long & untrimmed.mp4", "c.mp4"]
LENGTHS = [30, 240, 30]


def collection(labelled: bool) -> tuple[FeatureSet, FrameSet]:
    """Three videos (one long, untrimmed: three scenes in a row), features with three clusters,
    frames whose red channel says the scene, read with a stride of 2 at 25 fps."""
    rng = np.random.default_rng(0)
    n = sum(LENGTHS)
    scene = np.concatenate([np.zeros(30, int), np.arange(240) // 80, np.full(30, 2)])
    x = (rng.normal(size=(3, 8)) * 5)[scene] + rng.normal(size=(n, 8))
    frames = rng.integers(0, 255, (n, 24, 24, 3)).astype(np.uint8)
    frames[..., 0] = (scene * 120)[:, None, None]
    frame = np.concatenate([np.arange(k) * 2 for k in LENGTHS])
    seconds = frame / 25
    label = np.array(["a<b", "x", "y"])[scene] if labelled else np.full(n, "")
    fs = FeatureSet(x, np.repeat(NAMES, LENGTHS), frame, label, time=seconds)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)])
    videos = [VideoEntry(Path(v), v, None) for v in NAMES]
    return fs, FrameSet(frames, videos, offsets, positions=Positions(frame, seconds))


@pytest.fixture(scope="module", params=[True, False], ids=["labelled", "unlabelled"])
def report_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    fs, frames = collection(request.param)
    out = tmp_path_factory.mktemp("report")
    found = discover_features(fs, DiscoverConfig(repeats=2, max_k=6))
    write_results(out, found.clustered, found.results, found.assignments)
    write_report(out, found, frames)
    return out


def test_sample_rows_spread_over_videos() -> None:
    clusters = np.array([0, 0, 0, 0, 1, 1])
    video = np.array(["a", "a", "a", "b", "b", "b"])
    picks = sample_rows(clusters, video, 2, seed=0)
    assert set(picks) == {0, 1}
    assert {video[r] for r in picks[0]} == {"a", "b"}  # one per video first
    assert len(picks[1]) == 2 and set(picks[1]) <= {4, 5}


def test_page_has_every_section_and_escapes_names(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    results = json.loads((report_dir / "results.json").read_text())
    labelled = results["discovered"]["scored"]
    assert "<script" not in page.lower()  # the evil name is shown, not run
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.mp4" in page
    assert "long &amp; untrimmed.mp4" in page
    assert ("Scores against the true classes" in page) == labelled
    assert ("not scored: the collection has no labels" in page) != labelled
    if labelled:
        assert "a&lt;b" in page and "random_assignment" in page
    else:
        assert "chosen without labels" in page and "silhouette" in page
    assert "Map of the features" in page and "Timelines" in page and "Clusters" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing from the network
    images = re.findall(r'<img[^>]*src="([^"]+)"', page)
    assert images and all((report_dir / src).is_file() for src in images)
    k = results["discovered"]["k"]
    assert len(list((report_dir / "report" / "frames").glob("*.png"))) >= k


def test_report_rebuilds_from_the_folder_alone(report_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(report_dir, copy)
    (copy / "report.html").unlink()
    page = build_report(copy)
    assert page == copy / "report.html" and "Clusters" in page.read_text()


def test_report_never_replaces_what_it_did_not_write(tmp_path: Path) -> None:
    fs, frames = collection(True)
    found = discover_features(fs, DiscoverConfig(repeats=1, methods=["kmeans"]))
    write_results(tmp_path, found.clustered, found.results, found.assignments)
    (tmp_path / "report.html").write_text("<html>my own page</html>")
    with pytest.raises(TcdnError, match=r"report\.html exists and was not written by tcdn"):
        write_report(tmp_path, found, frames)
    (tmp_path / "report.html").unlink()
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "notes.txt").write_text("mine")
    with pytest.raises(TcdnError, match=r"report exists and was not written by tcdn"):
        build_report(tmp_path)
    assert (tmp_path / "report" / "notes.txt").read_text() == "mine"
    with pytest.raises(TcdnError, match=r"holds no results\.json"):
        build_report(tmp_path / "report")


@pytest.mark.skipif(
    find_chromium() is None,
    reason="no chromium on PATH: install Debian's `chromium` (apt-get install -y chromium; .ci/run does)",
)
def test_a_real_browser_shows_the_page(report_dir: Path) -> None:
    """Headless Chromium loads the page: no console error, no failed load, no request off this
    disk, every image decoded, the evil name shown as text, and a screenshot that is not blank."""
    import io

    from PIL import Image

    with chromium() as page:
        page.open((report_dir / "report.html").resolve().as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        text = page.evaluate("document.body.innerText")
        scripts = page.evaluate("document.scripts.length")
        png = page.screenshot()
        errors = page.errors()
        requests = page.requests()
    assert errors == []
    assert all(u.startswith(("file://", "data:")) for u in requests), requests
    assert images and all(done and width > 0 for _, done, width in images), images
    assert EVIL in text and scripts == 0
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)
    assert shot.shape[0] > 500 and shot.std() > 10  # not blank
    assert (shot < 128).mean() > 0.01  # some ink on it


def test_the_page_says_which_recipe_made_the_features_and_what_it_sees() -> None:
    from tcdn.report.page import _recipe_note
    from tcdn.training.recipes import RECIPES, WHAT_IT_SEES, recipe

    assert set(WHAT_IT_SEES) == set(RECIPES)
    for name, sees in (("best", "its difference to the next"), ("scenes", "the RGB frame")):
        config = recipe(name, seed=3).to_dict()
        note = _recipe_note({"train_config": config, "recipe": name})
        assert f"<code>{name}</code>" in note and sees in note
    # named by the config, not by the name a results.json stored: the RGB `best` of an earlier
    # tcdn (temperature 0.1) is not today's `best`
    earlier = dataclasses.replace(recipe("scenes"), temperature=0.1).to_dict()
    assert "no named recipe" in _recipe_note({"train_config": earlier, "recipe": "best"})
    assert "no named recipe" in _recipe_note({"train_config": {"loss": "nce"}, "recipe": None})
    assert "no named recipe" in _recipe_note({"train_config": {"no_such": 1}, "recipe": "best"})
    assert _recipe_note({"train_config": None}) == ""  # features from elsewhere: nothing said


def test_the_page_says_when_the_features_were_read_at_unit_length(tmp_path: Path) -> None:
    fs, frames = collection(True)
    for norm, said in (("l2", True), ("none", False)):
        out = tmp_path / norm
        given = dataclasses.replace(fs, meta={"norm": norm, "layer": "fc6"})
        found = discover_features(given, DiscoverConfig(repeats=1, methods=("kmeans",)))
        write_results(out, found.clustered, found.results, found.assignments)
        write_report(out, found, frames)
        page = (out / "report.html").read_text()
        assert "(fc6)" in page and ("(fc6) at unit length" in page) == said
