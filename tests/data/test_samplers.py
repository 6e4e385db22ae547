"""Property tests of the tuple samplers (SPEC §2).

A sampler returns global frame indices; these tests map every index back to its video and check
the tuple's promises: the positive is ``w`` after the query in the same video, the far frame ``n``
after it (clamped in a short video), the negative from another video, over random collections."""

from __future__ import annotations

import copy
import logging
import pickle

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from tcdn.data.samplers import (
    PairSampler,
    QuadrupletSampler,
    SFAPairSampler,
    TripletSampler,
    shard_rows,
)
from tcdn.errors import TcdnError

SETTINGS = settings(max_examples=60, deadline=None)

lengths_st = st.lists(st.integers(1, 40), min_size=2, max_size=8)  # includes very short videos

seeds_st = st.integers(0, 2**32 - 1)


def _video_of(lengths, idx: np.ndarray) -> np.ndarray:
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return np.searchsorted(offsets, idx, side="right") - 1


def _stream_position(stream: np.ndarray) -> np.ndarray:
    pos = np.empty_like(stream)
    pos[stream] = np.arange(len(stream))
    return pos


# -- Lq ------------------------------------------------------------------------------------------
@SETTINGS
@given(lengths_st, seeds_st, st.integers(1, 3), st.integers(1, 25), st.integers(1, 50), st.data())
def test_quadruplet_properties(lengths, seed, window, extra, batch, data):
    far = window + extra
    lengths = np.array(lengths)
    assume((lengths >= window + 2).sum() >= 2)  # two usable videos: a negative exists
    sampler = QuadrupletSampler(lengths, window=window, far=far, seed=seed)
    for _ in range(data.draw(st.integers(1, 3), label="calls")):
        out = sampler.sample(batch).indices
        assert out.shape == (batch, 4)
        assert out.dtype.kind == "i"
        assert ((out >= 0) & (out < lengths.sum())).all()
        q, p, f, o = out.T
        vq = _video_of(lengths, q)
        assert (lengths[vq] >= window + 2).all()  # never a query from a too-short video
        assert (_video_of(lengths, p) == vq).all()
        assert (p - q == window).all()
        assert (_video_of(lengths, f) == vq).all()
        assert (f - q == np.minimum(far, lengths[vq] - 1)).all()
        assert (f > p).all()
        assert (_video_of(lengths, o) != vq).all()
        assert (lengths[_video_of(lengths, o)] >= window + 2).all()  # never from a skipped video


def test_quadruplet_far_frame_exact_in_long_videos():
    lengths = [100, 80, 5, 60]
    sampler = QuadrupletSampler(lengths, window=2, far=20, seed=1)
    q, p, f, o = sampler.sample(2000).indices.T
    vq = _video_of(np.array(lengths), q)
    long = vq != 2
    assert long.any() and (~long).any()
    assert (f[long] - q[long] == 20).all()
    assert (f[~long] - q[~long] == 4).all()  # clamped to the last frame of the 5-frame video
    assert (p - q == 2).all()
    assert (_video_of(np.array(lengths), o) != vq).all()
    assert sampler.n_clamped == 1


# -- Ls ------------------------------------------------------------------------------------------
@SETTINGS
@given(
    lengths_st,
    seeds_st,
    st.integers(1, 3),
    st.integers(1, 60),
    st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]) | st.floats(0.0, 1.0),
)
def test_pair_properties(lengths, seed, window, batch, share):
    lengths = np.array(lengths)
    assume((lengths >= window + 1).sum() >= 2)  # two usable videos: a negative exists
    sampler = PairSampler(lengths, window=window, negative_share=share, seed=seed)
    drawn = sampler.sample(batch)
    pairs, y = drawn.indices, drawn.labels
    assert pairs.shape == (batch, 2) and y.shape == (batch,)
    assert set(np.unique(y)) <= {0, 1}
    assert int((y == 0).sum()) == round(batch * share)
    a, b = pairs.T
    assert ((pairs >= 0) & (pairs < lengths.sum())).all()
    va, vb = _video_of(lengths, a), _video_of(lengths, b)
    assert (lengths[va] >= window + 1).all()
    pos, neg = y == 1, y == 0
    assert (va[pos] == vb[pos]).all()
    assert (b[pos] - a[pos] == window).all()
    assert (va[neg] != vb[neg]).all()


def test_pair_default_share_is_half():
    drawn = PairSampler([30, 30, 30], seed=0).sample(120)
    _, y = drawn.indices, drawn.labels
    assert (y == 0).sum() == 60 and (y == 1).sum() == 60


# -- reproducibility and state -------------------------------------------------------------------
def _q_factory(seed):
    return QuadrupletSampler([30, 50, 7, 90], window=1, far=20, seed=seed)


def _p_factory(seed):
    return PairSampler([30, 50, 7, 90], window=2, negative_share=0.3, seed=seed)


def _draw(sampler, batch=40):
    """A batch as one array: the indices, and the pair labels as a last column if there are any."""
    drawn = sampler.sample(batch)
    if drawn.labels is None:
        return drawn.indices
    return np.concatenate([drawn.indices, drawn.labels[:, None]], axis=1)


def _sfa_factory(seed):
    return SFAPairSampler([30, 50, 7, 90], window=1, far=10, negative_share=0.5, seed=seed)


def _t_factory(seed):
    return TripletSampler([30, 50, 7, 90], window=2, seed=seed)


FACTORIES = [_q_factory, _p_factory, _sfa_factory, _t_factory]

FACTORY_IDS = ["quadruplet", "pair", "sfa", "triplet"]


@pytest.mark.parametrize("factory", FACTORIES, ids=FACTORY_IDS)
def test_same_seed_same_batches(factory):
    s1, s2 = factory(11), factory(11)
    for _ in range(5):
        np.testing.assert_array_equal(_draw(s1), _draw(s2))
    assert not np.array_equal(_draw(factory(11)), _draw(factory(12)))


@pytest.mark.parametrize("factory", FACTORIES, ids=FACTORY_IDS)
def test_state_dict_restores_stream(factory):
    sampler = factory(3)
    _draw(sampler)
    state = sampler.state_dict()
    saved = copy.deepcopy(state)
    ahead = [_draw(sampler) for _ in range(3)]
    assert state == saved  # the saved state is a snapshot, not a live view
    sampler.load_state_dict(state)
    again = [_draw(sampler) for _ in range(3)]
    for x, y in zip(ahead, again, strict=True):
        np.testing.assert_array_equal(x, y)
    # a fresh sampler restored from a pickled copy (as in a checkpoint) continues the same way
    fresh = factory(3)
    fresh.load_state_dict(pickle.loads(pickle.dumps(saved)))
    np.testing.assert_array_equal(_draw(fresh), ahead[0])


def test_state_from_another_seed_is_refused():
    with pytest.raises(TcdnError, match="seed"):
        _q_factory(1).load_state_dict(_q_factory(2).state_dict())


def test_mu_state_dict_restores_stream():
    sampler = QuadrupletSampler([40, 40, 40], far=10, seed=5, mu=True)
    sampler.sample(10)
    state = sampler.state_dict()
    ahead = sampler.sample(30).indices
    sampler.load_state_dict(state)
    np.testing.assert_array_equal(sampler.sample(30).indices, ahead)


# -- negatives -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["quadruplet", "pair"])
def test_negatives_spread_over_whole_collection(kind):
    lengths = np.array([30, 60, 90, 120, 45, 75])
    n = 6000
    if kind == "quadruplet":
        out = QuadrupletSampler(lengths, window=1, far=20, seed=9).sample(n).indices
        q, o = out[:, 0], out[:, 3]
    else:
        drawn = PairSampler(lengths, negative_share=1.0, seed=9).sample(n)
        pairs, y = drawn.indices, drawn.labels
        assert (y == 0).all()
        q, o = pairs[:, 0], pairs[:, 1]
    vq, vo = _video_of(lengths, q), _video_of(lengths, o)
    # every video, not only the first few of the list, gives negatives to every other
    for v in range(len(lengths)):
        assert set(vo[vq == v]) == set(range(len(lengths))) - {v}
    # and in proportion to its frames: uniform over the frames outside the query's video
    expected = np.zeros(len(lengths))
    for v in range(len(lengths)):
        share = lengths / (lengths.sum() - lengths[v])
        share[v] = 0
        expected += (vq == v).sum() * share
    observed = np.bincount(vo, minlength=len(lengths))
    assert chisquare(observed, expected).pvalue > 1e-4
    # within a video the frames are uniform too: first and second half of the longest video
    local = o[vo == 3] - lengths[:3].sum()
    halves = np.bincount(local >= 60, minlength=2)
    assert chisquare(halves).pvalue > 1e-4


def test_queries_spread_over_usable_videos():
    lengths = np.array([30, 60, 90, 2])
    q = QuadrupletSampler(lengths, window=1, far=20, seed=4).sample(3000).indices[:, 0]
    counts = np.bincount(_video_of(lengths, q), minlength=4)
    assert counts[3] == 0
    assert chisquare(counts[:3]).pvalue > 1e-4  # a usable video is drawn uniformly


# -- short videos, clamping, one video -----------------------------------------------------------
def test_short_videos_skipped_with_warning(caplog):
    names = ["long_a.mp4", "tiny.mp4", "long_b.mp4", "single.mp4"]
    lengths = np.array([25, 2, 30, 1])
    with caplog.at_level(logging.WARNING, logger="tcdn.data.samplers"):
        sampler = QuadrupletSampler(lengths, window=1, far=20, seed=0, names=names)
    text = caplog.text
    assert "tiny.mp4" in text and "single.mp4" in text
    assert "skipping long_a.mp4" not in text and "skipping long_b.mp4" not in text
    q = sampler.sample(2000).indices[:, 0]
    assert set(_video_of(lengths, q)) == {0, 2}


def test_pair_sampler_skips_single_frame_videos(caplog):
    lengths = np.array([1, 10, 10])
    with caplog.at_level(logging.WARNING, logger="tcdn.data.samplers"):
        sampler = PairSampler(lengths, window=1, names=["one.mp4", "a.mp4", "b.mp4"])
    assert "one.mp4" in caplog.text
    drawn = sampler.sample(500)
    pairs, _ = drawn.indices, drawn.labels
    assert 0 not in set(_video_of(lengths, pairs[:, 0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda n: QuadrupletSampler(n, window=1, far=20, seed=0),
        lambda n: TripletSampler(n, window=1, seed=0),
        lambda n: PairSampler(n, window=1, seed=0),
    ],
)
def test_skipped_video_is_never_a_negative(make):
    """A video too short for a tuple is skipped: none of its frames is drawn, as a negative
    either, and it does not count as the second video a negative needs."""
    with pytest.raises(TcdnError, match=r"one video long enough for a tuple .*1 shorter one"):
        make(np.array([1, 30]))
    lengths = np.array([1, 30, 40])
    idx = make(lengths).sample(3000).indices
    assert 0 not in set(_video_of(lengths, idx.ravel()))


def test_clamped_videos_are_reported(caplog):
    lengths = [100, 12, 21, 22, 5]
    with caplog.at_level(logging.WARNING, logger="tcdn.data.samplers"):
        sampler = QuadrupletSampler(lengths, window=1, far=20)
    # clamped where L - 1 < 20: the 12- and 5-frame videos; a 21-frame video still reaches t + 20
    assert sampler.n_clamped == 2
    assert "2 of 5 videos" in caplog.text


def test_no_usable_video_raises():
    with pytest.raises(TcdnError, match="frames a tuple needs"):
        QuadrupletSampler([2, 1, 2], window=1, far=5)


@pytest.mark.parametrize("cls", [QuadrupletSampler, PairSampler])
def test_single_video_raises_and_mentions_mu(cls):
    with pytest.raises(TcdnError, match="--mu"):
        cls([500], names=["only.mp4"])


def test_empty_collection_raises():
    with pytest.raises(TcdnError):
        QuadrupletSampler([])


# -- MU ------------------------------------------------------------------------------------------
def test_mu_one_long_video():
    far, window = 20, 2
    sampler = QuadrupletSampler([300], window=window, far=far, seed=8, mu=True)
    out = sampler.sample(2000).indices
    assert ((out >= 0) & (out < 300)).all()
    pos = _stream_position(sampler.stream)
    q, p, f, o = (pos[c] for c in out.T)
    assert (p - q == window).all()
    assert (f - q == far).all()
    assert (np.abs(o - q) > far).all()
    assert (o < q).any() and (o > q).any()  # both sides of the query


@SETTINGS
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), seeds_st, st.integers(2, 12))
def test_mu_properties(lengths, seed, far):
    lengths = np.array(lengths)
    assume(lengths.sum() >= 2 * far + 2)
    sampler = QuadrupletSampler(lengths, window=1, far=far, seed=seed, mu=True)
    stream = sampler.stream
    # the stream is every frame once, whole videos kept in order, the videos shuffled
    np.testing.assert_array_equal(np.sort(stream), np.arange(lengths.sum()))
    v = _video_of(lengths, stream)
    assert (np.diff(v) != 0).sum() == len(lengths) - 1
    same = np.diff(v) == 0
    assert (np.diff(stream)[same] == 1).all()
    pos = _stream_position(stream)
    q, p, f, o = (pos[c] for c in sampler.sample(40).indices.T)
    assert (p - q == 1).all() and (f - q == far).all()
    assert (np.abs(o - q) > far).all()
    drawn = PairSampler(lengths, window=1, seed=seed, mu=True).sample(40)
    pairs, y = drawn.indices, drawn.labels
    a, b = pos[pairs[:, 0]], pos[pairs[:, 1]]
    assert (b[y == 1] - a[y == 1] == 1).all()
    assert (np.abs(b[y == 0] - a[y == 0]) > 1).all()


def test_mu_order_is_seeded():
    lengths = [10] * 12
    a = QuadrupletSampler(lengths, far=4, seed=1, mu=True).stream
    b = QuadrupletSampler(lengths, far=4, seed=1, mu=True).stream
    c = QuadrupletSampler(lengths, far=4, seed=2, mu=True).stream
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mu_stream_too_short_raises():
    with pytest.raises(TcdnError, match="MU stream"):
        QuadrupletSampler([20, 10], far=20, mu=True)


# -- invalid options -----------------------------------------------------------------------------
@pytest.mark.parametrize(("window", "far"), [(0, 20), (-1, 20), (5, 5), (6, 5), (1, 1)])
def test_quadruplet_invalid_window_or_far(window, far):
    with pytest.raises(TcdnError, match=r"window|far"):
        QuadrupletSampler([50, 50], window=window, far=far)


@pytest.mark.parametrize(("window", "share"), [(0, 0.5), (-2, 0.5), (1, -0.1), (1, 1.5)])
def test_pair_invalid_window_or_share(window, share):
    with pytest.raises(TcdnError, match=r"window|share"):
        PairSampler([50, 50], window=window, negative_share=share)


def test_collection_whose_other_videos_are_empty():
    try:
        sampler = QuadrupletSampler([50, 0], window=1, far=5)
    except TcdnError:
        return  # refusing such a collection up front is a correct answer
    assert (sampler.sample(10).indices < 50).all()


# -- SFA pairs -----------------------------------------------------------------------------------
@SETTINGS
@given(
    lengths_st,
    seeds_st,
    st.integers(1, 3),
    st.integers(1, 25),
    st.integers(1, 60),
    st.sampled_from([0.0, 0.5, 1.0]) | st.floats(0.0, 1.0),
)
def test_sfa_properties(lengths, seed, window, extra, batch, share):
    far = window + extra
    lengths = np.array(lengths)
    assume((lengths >= window + 2).any())
    sampler = SFAPairSampler(lengths, window=window, far=far, negative_share=share, seed=seed)
    drawn = sampler.sample(batch)
    pairs, y = drawn.indices, drawn.labels
    assert pairs.shape == (batch, 2) and y.shape == (batch,)
    assert int((y == 0).sum()) == round(batch * share)
    a, b = pairs.T
    va, vb = _video_of(lengths, a), _video_of(lengths, b)
    assert (lengths[va] >= window + 2).all()
    assert (va == vb).all()  # both frames from one video, positives and negatives alike
    pos, neg = y == 1, y == 0
    assert (b[pos] - a[pos] == window).all()
    reach = np.minimum(far, lengths[va] - 1)  # clamped in a short video
    assert (np.abs(b[neg] - a[neg]) >= reach[neg]).all()
    assert (np.abs(b[neg] - a[neg]) > window).all()  # never contiguous


def naive_sfa_negative_probabilities(length: int, reach: int) -> dict[tuple[int, int], float]:
    """P(query t, partner t') of a negative pair in one video, by enumeration: a direction with
    chance 1/2, a query uniform among those with a partner >= reach away in that direction, the
    partner uniform among those."""
    probs: dict[tuple[int, int], float] = {}
    for direction in (+1, -1):
        queries = [
            t
            for t in range(length)
            if any(abs(u - t) >= reach and (u - t) * direction > 0 for u in range(length))
        ]
        for t in queries:
            partners = [u for u in range(length) if abs(u - t) >= reach and (u - t) * direction > 0]
            for u in partners:
                probs[(t, u)] = probs.get((t, u), 0.0) + 0.5 / len(queries) / len(partners)
    return probs


@pytest.mark.parametrize(("length", "far"), [(9, 3), (6, 20), (12, 5)])
def test_sfa_negatives_follow_the_naive_distribution(length, far):
    n = 20000
    sampler = SFAPairSampler([length], window=1, far=far, negative_share=1.0, seed=2)
    drawn = sampler.sample(n)
    pairs, _ = drawn.indices, drawn.labels
    expected = naive_sfa_negative_probabilities(length, min(far, length - 1))
    keys = sorted(expected)
    observed = {k: 0 for k in keys}
    for t, u in pairs.tolist():
        assert (t, u) in observed, (t, u)
        observed[(t, u)] += 1
    assert chisquare([observed[k] for k in keys], [expected[k] * n for k in keys]).pvalue > 1e-4


def test_sfa_needs_no_second_video_but_reports_clamping(caplog):
    with caplog.at_level(logging.WARNING, logger="tcdn.data.samplers"):
        sampler = SFAPairSampler([8, 40], window=1, far=20, seed=0, names=["short.mp4", "long.mp4"])
    assert sampler.n_clamped == 1 and "short.mp4" in caplog.text
    drawn = SFAPairSampler([60], far=20, seed=0).sample(50)  # one video is enough
    pairs, _ = drawn.indices, drawn.labels
    assert ((pairs >= 0) & (pairs < 60)).all()


def test_sfa_invalid_options():
    with pytest.raises(TcdnError, match="window"):
        SFAPairSampler([50], window=0)
    with pytest.raises(TcdnError, match="larger than the window"):
        SFAPairSampler([50], window=3, far=3)
    with pytest.raises(TcdnError, match="share"):
        SFAPairSampler([50], negative_share=2.0)


# -- Ld triplets ---------------------------------------------------------------------------------
@SETTINGS
@given(lengths_st, seeds_st, st.integers(1, 3), st.integers(1, 50))
def test_triplet_properties(lengths, seed, window, batch):
    lengths = np.array(lengths)
    assume((lengths >= window + 1).sum() >= 2)  # two usable videos: a negative exists
    out = TripletSampler(lengths, window=window, seed=seed).sample(batch).indices
    assert out.shape == (batch, 3)
    q, p, o = out.T
    vq = _video_of(lengths, q)
    assert (_video_of(lengths, p) == vq).all() and (p - q == window).all()
    assert (_video_of(lengths, o) != vq).all()


def test_triplet_single_video_raises_and_mentions_mu():
    with pytest.raises(TcdnError, match="--mu"):
        TripletSampler([500])


@SETTINGS
@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), seeds_st, st.integers(2, 12))
def test_mu_properties_sfa_and_triplet(lengths, seed, far):
    lengths = np.array(lengths)
    assume(lengths.sum() >= 2 * far + 2)
    sfa = SFAPairSampler(lengths, window=1, far=far, seed=seed, mu=True)
    pos = _stream_position(sfa.stream)
    drawn = sfa.sample(40)
    pairs, y = drawn.indices, drawn.labels
    a, b = pos[pairs[:, 0]], pos[pairs[:, 1]]
    assert (b[y == 1] - a[y == 1] == 1).all()
    assert (np.abs(b[y == 0] - a[y == 0]) >= far).all()
    trip = TripletSampler(lengths, window=1, seed=seed, mu=True)
    q, p, o = (_stream_position(trip.stream)[c] for c in trip.sample(40).indices.T)
    assert (p - q == 1).all() and (np.abs(o - q) > 1).all()


# -- sharding across ranks -----------------------------------------------------------------------
@SETTINGS
@given(st.integers(1, 8), st.integers(1, 30), seeds_st)
def test_shards_are_disjoint_and_make_the_single_process_batch(world, per_rank, seed):
    batch = world * per_rank
    single = _draw(_q_factory(seed % 1000), batch)
    shards = []
    for rank in range(world):
        own = _q_factory(seed % 1000)  # each rank has its own sampler with the shared seed
        rows = shard_rows(batch, rank, world)
        assert rows.stop - rows.start == per_rank
        shards.append((set(range(batch)[rows]), _draw(own, batch)[rows]))
    covered = [r for rows, _ in shards for r in rows]
    assert sorted(covered) == list(range(batch))  # no row twice, none missed
    np.testing.assert_array_equal(np.concatenate([x for _, x in shards]), single)


def test_shard_rows_refuses_uneven_batches():
    with pytest.raises(TcdnError, match="divisible by 3"):
        shard_rows(40, 0, 3)
    with pytest.raises(TcdnError, match="rank"):
        shard_rows(40, 2, 2)


@given(batch=st.integers(1, 300), share=st.floats(0.0, 1.0))
def test_pair_labels_count_and_spread(batch: int, share: float) -> None:
    from tcdn.data.samplers import _pair_labels

    y = _pair_labels(batch, share)
    n_neg = round(batch * share)
    assert y.shape == (batch,) and int((y == 0).sum()) == n_neg
    # Evenly spread: any two rank blocks of a 2-way split differ by at most one negative.
    half = batch // 2
    if batch % 2 == 0:
        assert abs(int((y[:half] == 0).sum()) - int((y[half:] == 0).sum())) <= 1
