"""What a discovery compares (``tcdn.discovery.config``): options checked when the config is made."""

from __future__ import annotations

import pytest

from tcdn.discovery.config import METHODS, SOURCES, DiscoverConfig
from tcdn.errors import TcdnError


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"sources": ("pixels",)}, "unknown feature source 'pixels'"),
        ({"methods": ("dbscan",)}, "unknown clustering method 'dbscan'"),
        ({"methods": ()}, "--methods names no method"),
        ({"level": "clip"}, "--level"),
        ({"repeats": 0}, "--repeats"),
        ({"k": 1}, "--k"),
        ({"frame_stride": 0}, "--frame-stride"),
        ({"max_per_video": 0}, "--max-per-video"),
        ({"groups": {"who": "_(\\d+"}}, "not a regular expression"),
        ({"groups": {"who": "_\\d+"}}, "needs a \\(group\\)"),
        ({"groups": {"who is": "(a)"}}, "must be a word"),
    ],
)
def test_bad_options_are_refused(options: dict, match: str) -> None:
    with pytest.raises(TcdnError, match=match):
        DiscoverConfig(**options)


def test_defaults_and_derived_values() -> None:
    config = DiscoverConfig()
    assert config.methods == METHODS and config.n_clusters(4) == 4
    assert DiscoverConfig(k=7).n_clusters(4) == 7
    assert config.sources_for(have_checkpoint=True) == SOURCES
    assert "trained" not in config.sources_for(have_checkpoint=False)
    with pytest.raises(TcdnError, match="no --checkpoint"):
        DiscoverConfig(sources=("trained",)).sources_for(have_checkpoint=False)
    assert DiscoverConfig.parse_list(" kmeans, ,spectral ") == ("kmeans", "spectral")


def test_group_values_are_read_from_video_names() -> None:
    config = DiscoverConfig(groups={"performer": r"_(\d+)\.mp4$"})
    names = ["wave1/wave1_00.mp4", "bend/bend_03.mp4"]
    assert config.group_values(names) == {"performer": ["00", "03"]}
    with pytest.raises(TcdnError, match=r"does not match the video 'x\.avi'"):
        config.group_values(["x.avi"])
