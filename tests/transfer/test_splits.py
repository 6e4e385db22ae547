"""Splits of a transfer experiment (``tcdn.transfer.splits``): k-shot, by video, fixed test sample."""

from __future__ import annotations

import numpy as np
import pytest

from tcdn.errors import TcdnError
from tcdn.transfer.splits import child_seed, hold_out, plan_split, rng, sample_shots

#: 3 classes x 4 videos of 5 frames; video v has label v // 4
GROUPS = np.repeat(np.arange(12), 5)
LABELS = GROUPS // 4


def test_hold_out_keeps_each_video_on_one_side() -> None:
    for seed in range(20):
        train, test = hold_out(LABELS, GROUPS, 0.5, np.random.default_rng(seed))
        assert len(np.intersect1d(train, test)) == 0
        assert len(train) + len(test) == len(LABELS)
        assert not set(GROUPS[train]) & set(GROUPS[test])
        for c in range(3):  # 2 of each class's 4 videos on each side
            assert len(set(GROUPS[test][LABELS[test] == c])) == 2
            assert len(set(GROUPS[train][LABELS[train] == c])) == 2


@pytest.mark.parametrize(
    ("fraction", "n_test"), [(0.01, 1), (0.3, 1), (0.4, 2), (0.6, 2), (0.99, 3)]
)
def test_hold_out_rounds_and_keeps_one_on_each_side(fraction: float, n_test: int) -> None:
    _, test = hold_out(LABELS, GROUPS, fraction, np.random.default_rng(0))
    assert len(set(GROUPS[test])) == 3 * n_test  # round(fraction * 4), in [1, 3], per class


def test_hold_out_without_groups_splits_images() -> None:
    labels = np.array([0] * 10 + [1] * 4)
    train, test = hold_out(labels, None, 0.5, np.random.default_rng(1))
    assert np.bincount(labels[test]).tolist() == [5, 2]
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(14))


def test_hold_out_needs_two_units_per_class() -> None:
    labels = np.array([0, 0, 1])
    with pytest.raises(TcdnError, match=r"class 'b' has only 1 video"):
        hold_out(labels, np.array([0, 1, 2]), 0.5, np.random.default_rng(0), ["a", "b"])
    with pytest.raises(TcdnError, match="several classes"):
        hold_out(np.array([0, 1]), np.array([0, 0]), 0.5, np.random.default_rng(0))


def test_sample_shots_without_groups() -> None:
    labels = np.repeat(np.arange(4), 10)
    pool = np.arange(0, 40, 2)  # 5 of each class
    rows = sample_shots(labels, pool, 3, np.random.default_rng(0))
    assert np.bincount(labels[rows]).tolist() == [3, 3, 3, 3]
    assert set(rows) <= set(pool) and len(set(rows)) == 12
    with pytest.raises(
        TcdnError, match=r"class '0' has 5 training image\(s\), fewer than --shots 6"
    ):
        sample_shots(labels, pool, 6, np.random.default_rng(0))


def _spread_reference(rows: np.ndarray, groups: np.ndarray, shots: int) -> list[int]:
    """How many rows each group should give: as even as possible (obvious reference)."""
    n = len(np.unique(groups[rows]))
    return sorted([shots // n + (1 if i < shots % n else 0) for i in range(n)], reverse=True)


@pytest.mark.parametrize("shots", [1, 2, 3, 4, 5, 7, 9])
def test_sample_shots_spread_over_videos(shots: int) -> None:
    train, _ = hold_out(LABELS, GROUPS, 0.25, np.random.default_rng(0))  # 3 videos per class
    rows = sample_shots(LABELS, train, shots, np.random.default_rng(shots), GROUPS)
    assert len(set(rows)) == 3 * shots and set(rows) <= set(train)
    for c in range(3):
        mine = rows[LABELS[rows] == c]
        per_video = sorted(np.unique(GROUPS[mine], return_counts=True)[1].tolist(), reverse=True)
        want = [n for n in _spread_reference(train[LABELS[train] == c], GROUPS, shots) if n]
        assert per_video == want


def test_sample_shots_draws_differ_by_seed() -> None:
    draws = {tuple(sample_shots(LABELS, np.arange(60), 2, rng(0, r, 2), GROUPS)) for r in range(8)}
    assert len(draws) > 4


def test_plan_split_official_test_sample_is_fixed() -> None:
    labels = np.repeat(np.arange(5), 20)
    splits = [
        plan_split(labels, None, 500, shots=5, test_size=50, test_fraction=0.5, seed=3, repeat=r)
        for r in range(4)
    ]
    assert all(not s.test_in_train for s in splits)
    for s in splits:  # the same test sample for every repeat, a new k-shot draw each time
        np.testing.assert_array_equal(s.test, splits[0].test)
        assert len(s.test) == 50 and len(np.unique(s.test)) == 50 and s.test.max() < 500
        assert np.bincount(labels[s.train]).tolist() == [5] * 5
    assert len({tuple(s.train) for s in splits}) == 4
    other_seed = plan_split(
        labels, None, 500, shots=5, test_size=50, test_fraction=0.5, seed=4, repeat=0
    )
    assert not np.array_equal(other_seed.test, splits[0].test)
    whole = plan_split(
        labels, None, 500, shots=None, test_size=None, test_fraction=0.5, seed=0, repeat=0
    )
    assert len(whole.train) == 100 and len(whole.test) == 500


def test_plan_split_by_video_per_repeat() -> None:
    seen_test_videos = set()
    for r in range(6):
        s = plan_split(
            LABELS, GROUPS, None, shots=2, test_size=None, test_fraction=0.5, seed=0, repeat=r
        )
        assert s.test_in_train
        assert not set(GROUPS[s.train]) & set(GROUPS[s.test])  # no video on both sides
        assert np.bincount(LABELS[s.train]).tolist() == [2, 2, 2]
        assert len(s.test) == 30  # every frame of the 6 held-out videos
        assert s.test_groups(GROUPS) == sorted(set(GROUPS[s.test].tolist()))
        seen_test_videos.add(tuple(s.test_groups(GROUPS)))
    assert len(seen_test_videos) > 1  # each repeat holds out its own videos
    sampled = plan_split(
        LABELS, GROUPS, None, shots=None, test_size=7, test_fraction=0.5, seed=0, repeat=0
    )
    assert len(sampled.test) == 7 and not set(GROUPS[sampled.train]) & set(GROUPS[sampled.test])


def test_child_seeds_differ_by_purpose_and_repeat() -> None:
    seeds = {child_seed(0, r, p) for r in range(5) for p in range(7)}
    assert len(seeds) == 35 and all(0 <= s < 2**63 for s in seeds)
