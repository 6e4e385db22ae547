"""Which images train and which test, per repeat: k-shot samples, held-out splits that keep each
video on one side, and the fixed random test sample of the PASCAL protocol.

Every draw has its own generator, ``numpy.random.default_rng([seed, repeat, purpose])``, so
changing one option (e.g. ``--shots``) does not shift the other draws. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tcdn.errors import TcdnError

#: the purposes of a repeat's generators (the third entry of their seed)
SPLIT, TEST_SAMPLE, SHOTS, INIT, ORDER, AUGMENT, DROPOUT = range(7)
#: the "repeat" of the test sample of an official test split: one for every repeat
FIXED = 1_000_000


def rng(seed: int, repeat: int, purpose: int) -> np.random.Generator:
    """The generator of one purpose in one repeat."""
    return np.random.default_rng([seed, repeat, purpose])


def child_seed(seed: int, repeat: int, purpose: int) -> int:
    """A 63-bit integer seed (e.g. for torch) of one purpose in one repeat."""
    return int(np.random.SeedSequence([seed, repeat, purpose]).generate_state(2, np.uint64)[0] >> 1)


def hold_out(
    labels: np.ndarray,
    groups: np.ndarray | None,
    fraction: float,
    gen: np.random.Generator,
    classes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split the rows class by class: ``round(fraction * n)`` (at least 1, at most ``n - 1``) of
    each class's ``n`` units go to the test side. A unit is a group (a video: all its rows go to
    one side) or, without groups, a row. Returns the sorted training and test rows."""
    labels = np.asarray(labels)
    if groups is None:
        unit = np.arange(len(labels))
    else:
        unit = np.asarray(groups)
        for g in np.unique(unit):
            if len(np.unique(labels[unit == g])) > 1:
                raise TcdnError(f"group {g} holds images of several classes: a video has one label")
    test_units: list[np.ndarray] = []
    for c in np.unique(labels):
        units = np.unique(unit[labels == c])
        n = len(units)
        if n < 2:
            name = classes[c] if classes else str(c)
            what = "video" if groups is not None else "image"
            raise TcdnError(
                f"class {name!r} has only {n} {what}: a split needs at least 2 per class (one on "
                "each side); add more or leave the class out"
            )
        n_test = min(max(int(np.floor(fraction * n + 0.5)), 1), n - 1)
        test_units.append(gen.permutation(units)[:n_test])
    is_test = np.isin(unit, np.concatenate(test_units))
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def sample_shots(
    labels: np.ndarray,
    pool: np.ndarray,
    shots: int,
    gen: np.random.Generator,
    groups: np.ndarray | None = None,
    classes: list[str] | None = None,
) -> np.ndarray:
    """``shots`` rows of each class among ``pool``, drawn without replacement; sorted.

    With ``groups`` (videos), the rows are spread over as many groups as possible: the class's
    groups in a random order, each with its rows in a random order, are taken round-robin (one
    row from each group, then a second from each, ...)."""
    pool = np.asarray(pool, dtype=np.int64)
    chosen: list[np.ndarray] = []
    for c in np.unique(labels):
        rows = pool[labels[pool] == c]
        if len(rows) < shots:
            name = classes[c] if classes else str(c)
            raise TcdnError(
                f"class {name!r} has {len(rows)} training image(s), fewer than --shots {shots}: "
                "lower --shots"
            )
        if groups is None:
            chosen.append(gen.choice(rows, shots, replace=False))
            continue
        g = np.asarray(groups)[rows]
        order = gen.permutation(np.unique(g))
        lists = [gen.permutation(rows[g == u]) for u in order]
        picked: list[int] = []
        depth = 0
        while len(picked) < shots:
            for lst in lists:
                if depth < len(lst) and len(picked) < shots:
                    picked.append(int(lst[depth]))
            depth += 1
        chosen.append(np.asarray(picked, dtype=np.int64))
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def sample_rows(rows: np.ndarray, size: int | None, gen: np.random.Generator) -> np.ndarray:
    """A random sample of ``size`` of ``rows`` (all of them if ``size`` is ``None`` or larger); sorted."""
    rows = np.asarray(rows, dtype=np.int64)
    if size is None or size >= len(rows):
        return np.sort(rows)
    return np.sort(gen.choice(rows, size, replace=False))


@dataclass
class Split:
    """The rows one repeat trains and tests on.

    ``train`` indexes the training :class:`~tcdn.transfer.images.ImageSet`; ``test`` indexes the
    official test set, or (``test_in_train``) the training set's held-out part."""

    train: np.ndarray
    test: np.ndarray
    test_in_train: bool

    def test_groups(self, groups: np.ndarray | None) -> list[int]:
        """The groups (videos) on the test side, for the record; empty without groups."""
        if groups is None or not self.test_in_train:
            return []
        return sorted(int(g) for g in np.unique(np.asarray(groups)[self.test]))


def plan_split(
    train_labels: np.ndarray,
    train_groups: np.ndarray | None,
    n_test_official: int | None,
    *,
    shots: int | None,
    test_size: int | None,
    test_fraction: float,
    seed: int,
    repeat: int,
    classes: list[str] | None = None,
) -> Split:
    """The split of repeat ``repeat``.

    With an official test split (``n_test_official`` images), the training pool is the whole
    training split and the test rows are one random sample of ``test_size`` test images, the
    same for every repeat (the PASCAL protocol's "2,000 random validation crops"). Without one,
    each repeat holds out its own ``test_fraction`` of each class (by video where there are
    videos) and samples ``test_size`` of them. Then ``shots`` per class are drawn from the pool.
    """
    if n_test_official is not None:
        pool = np.arange(len(train_labels))
        test = sample_rows(np.arange(n_test_official), test_size, rng(seed, FIXED, TEST_SAMPLE))
        in_train = False
    else:
        pool, held = hold_out(
            train_labels, train_groups, test_fraction, rng(seed, repeat, SPLIT), classes
        )
        test = sample_rows(held, test_size, rng(seed, repeat, TEST_SAMPLE))
        in_train = True
    train = pool
    if shots is not None:
        train = sample_shots(
            train_labels, pool, shots, rng(seed, repeat, SHOTS), train_groups, classes
        )
    return Split(np.asarray(train, np.int64), np.asarray(test, np.int64), in_train)
