"""The eigensolver (``tcdn.discovery.eigen``) against dense LAPACK on graphs shaped like real ones:
several connected components (a repeated eigenvalue 1), clusters of eigenvalues next to 1, and a
graph on which plain Lanczos gives up or returns wrong eigenvalues."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse.linalg
from scipy import sparse
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

import tcdn.discovery.eigen as eigen
from tcdn.discovery.eigen import normalized_affinity, top_eigenpairs


def blob_graph(sizes, *, seed=0, p_in=0.3, bridges=0, w_bridge=1e-3):
    """Random dense-ish blocks (one per entry of ``sizes``, each connected by a ring), joined by
    ``bridges`` weak edges between consecutive blocks."""
    rng = np.random.default_rng(seed)
    blocks = []
    for s in sizes:
        a = np.triu((rng.random((s, s)) < p_in) * rng.uniform(0.5, 1.0, (s, s)), 1)
        a[np.arange(s - 1), np.arange(1, s)] = 1.0
        blocks.append(sparse.csr_matrix(a + a.T))
    a = sparse.block_diag(blocks).tolil()
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for b in range(len(sizes) - 1):
        for _ in range(bridges):
            i = starts[b] + rng.integers(sizes[b])
            j = starts[b + 1] + rng.integers(sizes[b + 1])
            a[i, j] = a[j, i] = w_bridge
    return normalized_affinity(a.tocsr())


def video_graph(lengths, *, band=6, seed=0, bridges=0, w_bridge=1e-4):
    """The kNN graph of frame trajectories: each video a path whose frames link to their ``band``
    temporal neighbours each side; videos apart, or joined by weak edges to the next."""
    rng = np.random.default_rng(seed)
    blocks = []
    for n in lengths:
        t = np.arange(n)
        i, j = np.nonzero(np.triu(np.abs(t[:, None] - t[None, :]) <= band, 1))
        w = np.exp(-((i - j) ** 2) / band**2) * rng.uniform(0.8, 1.0, len(i))
        b = sparse.csr_matrix((w, (i, j)), shape=(n, n))
        blocks.append(b + b.T)
    a = sparse.block_diag(blocks).tolil()
    starts = np.concatenate([[0], np.cumsum(lengths)])
    for v in range(len(lengths) - 1):
        for _ in range(bridges):
            p = starts[v] + rng.integers(lengths[v])
            q = starts[v + 1] + rng.integers(lengths[v + 1])
            a[p, q] = a[q, p] = w_bridge
    return a.tocsr()


def assert_exact(m, vals, vecs, k, *, val_tol=1e-8, res_tol=1e-5):
    """The slow obvious reference: every eigenpair of the dense matrix."""
    all_vals, all_vecs = np.linalg.eigh(m.toarray())
    all_vals, all_vecs = all_vals[::-1], all_vecs[:, ::-1]
    assert vals.shape == (k,) and vecs.shape == (m.shape[0], k)
    assert np.all(np.diff(vals) <= 1e-12), "eigenvalues must be descending"
    np.testing.assert_allclose(vals, all_vals[:k], atol=val_tol, rtol=0)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(k), atol=1e-6)
    assert np.linalg.norm(m @ vecs - vecs * vals, axis=0).max() <= res_tol
    # the vectors span part of the exact eigenspace of the eigenvalues >= lam_k (whole cluster)
    p = all_vecs[:, : int(np.sum(all_vals >= all_vals[k - 1] - 1e-6))]
    assert np.linalg.norm(vecs - p @ (p.T @ vecs), 2) <= 1e-4


@pytest.fixture
def iterative(monkeypatch: pytest.MonkeyPatch):
    """Send every component, however small, through the iterative path."""
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    monkeypatch.setattr(eigen, "SMALL_COMPONENT_MAX", 0)
    return monkeypatch


@pytest.mark.parametrize("k", [1, 2, 7])
def test_connected_graph_by_shift_invert_and_by_lobpcg(k, iterative) -> None:
    m = blob_graph([120, 150, 130], bridges=3, w_bridge=0.05)
    vals, vecs, info = top_eigenpairs(m, k)
    assert info.method == "connected+shift-invert" and info.converged
    assert_exact(m, vals, vecs, k)
    iterative.setattr(eigen, "LU_MAX", 0)  # the multigrid-preconditioned LOBPCG alone
    vals, vecs, info = top_eigenpairs(m, k)
    assert info.method == "connected+lobpcg-amg" and info.converged  # no shift-invert tried
    assert_exact(m, vals, vecs, k)


@pytest.mark.parametrize("k", [3, 6, 11])
def test_components_give_every_copy_of_eigenvalue_one(k, monkeypatch) -> None:
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    m = blob_graph([80, 90, 100, 110, 120, 130], seed=1)
    vals, vecs, info = top_eigenpairs(m, k)
    assert info.n_components == 6
    assert_exact(m, vals, vecs, k)
    assert np.sum(np.abs(vals - 1) < 1e-10) == min(k, 6)


@pytest.mark.parametrize("k", [3, 11])
def test_every_component_solved_iteratively(k, iterative) -> None:
    m = blob_graph([100, 110, 120, 130, 140, 150], seed=2)
    for lu_max in (10**9, 0):
        iterative.setattr(eigen, "LU_MAX", lu_max)
        vals, vecs, info = top_eigenpairs(m, k)
        assert info.iterative_nodes == m.shape[0] and info.converged
        assert_exact(m, vals, vecs, k)


def test_ties_go_to_the_largest_components(monkeypatch) -> None:
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    m = blob_graph([50, 200, 90, 120], seed=3)
    vals, vecs, _ = top_eigenpairs(m, 2)
    np.testing.assert_allclose(vals, [1, 1], atol=1e-12)
    support = [set(np.flatnonzero(np.abs(vecs[:, j]) > 1e-12)) for j in range(2)]
    assert support == [set(range(50, 250)), set(range(340, 460))]


def test_a_graph_that_defeats_plain_lanczos(monkeypatch) -> None:
    """40 videos apart and 12 weakly joined: the shape of graph on which tcdn's former call,
    eigsh(which="LA"), stalled or returned wrong eigenvalues."""
    rng = np.random.default_rng(4)
    apart = video_graph(list(rng.integers(15, 40, 40)), seed=4)
    joined = video_graph(list(rng.integers(30, 70, 12)), seed=5, bridges=2)
    m = normalized_affinity(sparse.block_diag([apart, joined]).tocsr())
    k = 11
    exact = np.sort(np.linalg.eigvalsh(m.toarray()))[::-1][:k]
    v0 = np.random.default_rng(0).standard_normal(m.shape[0])
    try:
        lanczos = np.sort(eigsh(m, k=k, which="LA", v0=v0, maxiter=300)[0])[::-1]
        lanczos_exact = np.abs(lanczos - exact).max() < 1e-6
    except ArpackNoConvergence:
        lanczos_exact = False
    assert not lanczos_exact
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    vals, vecs, _ = top_eigenpairs(m, k)
    assert_exact(m, vals, vecs, k)
    monkeypatch.setattr(eigen, "SMALL_COMPONENT_MAX", 0)  # the joined piece iteratively
    vals, vecs, _ = top_eigenpairs(m, k)
    assert_exact(m, vals, vecs, k)


def test_dense_input_and_small_problems_are_solved_densely() -> None:
    m = blob_graph([40, 50, 60], bridges=2, w_bridge=0.01)
    for given in (m, m.toarray()):
        vals, vecs, info = top_eigenpairs(given, 5)
        assert info.method == "dense"
        assert_exact(m, vals, vecs, 5)


def test_unconverged_steps_fall_back_and_say_so(iterative, caplog) -> None:
    m = blob_graph([300, 300], bridges=5, w_bridge=0.02, seed=6)
    with caplog.at_level(logging.WARNING, logger="tcdn.discovery.eigen"):
        vals, vecs, info = top_eigenpairs(m, 4, max_iter=1, tol=1e-12)
    assert info.steps[-1] == "dense"
    assert any("dense LAPACK instead" in r.message for r in caplog.records)
    assert_exact(m, vals, vecs, 4)
    # no dense fallback allowed: the best pairs come back, flagged and logged as unconverged
    iterative.setattr(eigen, "DENSE_FALLBACK_MAX", 0)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tcdn.discovery.eigen"):
        vals, vecs, info = top_eigenpairs(m, 4, max_iter=1, tol=1e-14)
    assert not info.converged
    assert vals.shape == (4,) and np.all(np.isfinite(vecs)) and np.all(np.diff(vals) <= 1e-12)
    assert any("miss the tolerance" in r.message for r in caplog.records)


def test_failing_solvers_end_in_an_answer(iterative) -> None:
    def boom(*args, **kwargs):
        raise np.linalg.LinAlgError("forced")

    iterative.setattr(scipy.sparse.linalg, "lobpcg", boom)
    iterative.setattr(scipy.sparse.linalg, "splu", boom)
    m = blob_graph([200, 250], bridges=3, w_bridge=0.02, seed=7)
    vals, vecs, info = top_eigenpairs(m, 3)
    assert info.steps[0].startswith("shift-invert failed") and info.steps[-1] == "dense"
    assert_exact(m, vals, vecs, 3)
    iterative.setattr(eigen, "DENSE_FALLBACK_MAX", 0)
    vals, vecs, info = top_eigenpairs(m, 3, max_iter=50)
    assert info.steps[-1].startswith("subspace iteration") and not info.converged
    assert vals.shape == (3,) and np.all(np.isfinite(vecs))


def test_seeded_and_checked(iterative) -> None:
    m = blob_graph([150, 160, 170], bridges=2, w_bridge=0.05)
    a, b = top_eigenpairs(m, 4, random_state=3), top_eigenpairs(m, 4, random_state=3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for k in (0, m.shape[0] + 1):
        with pytest.raises(ValueError, match="k must be"):
            top_eigenpairs(m, k)


@pytest.mark.parametrize("k", [1, 4, 6])
def test_at_least_k_components_take_the_perron_pair_of_each(k, monkeypatch) -> None:
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    a = video_graph([60, 1700, 80, 90, 100, 70])  # one component above SMALL_COMPONENT_MAX
    m = normalized_affinity(a)
    sqrt_deg = np.sqrt(np.asarray(a.sum(axis=1)).ravel())
    vals, vecs, info = top_eigenpairs(m, k, sqrt_degrees=sqrt_deg)
    assert info.n_components == 6 and info.closed_form == 6 and info.iterative_nodes == 0
    assert "perron" in info.method and info.converged
    assert_exact(m, vals, vecs, k)
    solved, solved_vecs, _ = top_eigenpairs(m, k)  # the same pairs when solved for
    np.testing.assert_allclose(vals, solved, atol=1e-12)
    np.testing.assert_allclose(np.abs(vecs.T @ solved_vecs), np.eye(k), atol=1e-8)
    # degrees that are not the affinity's: every component is solved for, still exactly
    wrong = np.random.default_rng(0).random(len(sqrt_deg))
    vals, vecs, info = top_eigenpairs(m, k, sqrt_degrees=wrong)
    assert info.closed_form == 0
    assert_exact(m, vals, vecs, k)


def test_regularised_normalisation_matches_its_formula() -> None:
    a = video_graph([30, 40], bridges=2, w_bridge=0.01)
    tau = 0.7
    dense = a.toarray()
    want = np.zeros_like(dense)
    for i in range(len(dense)):  # the slow obvious (D + tau I)^-1/2 A (D + tau I)^-1/2
        for j in range(len(dense)):
            want[i, j] = dense[i, j] / np.sqrt((dense[i].sum() + tau) * (dense[j].sum() + tau))
    np.testing.assert_allclose(normalized_affinity(a, tau).toarray(), want, atol=1e-15)
    np.testing.assert_allclose(normalized_affinity(dense, tau), want, atol=1e-15)
    with pytest.raises(ValueError, match="tau"):
        normalized_affinity(a, -1.0)


@pytest.mark.parametrize("k", [3, 6, 11])
def test_regularised_components_give_their_own_top_pairs(k, monkeypatch) -> None:
    # Regularised, a component's top eigenvalue is below 1 and depends on its degrees: a
    # component of low degree may place none of its pairs in the top k and a dense one several,
    # so the count of components says nothing and each is asked for k.
    monkeypatch.setattr(eigen, "DENSE_MAX", 0)
    sparse_part = video_graph([60, 70, 80], band=1, seed=4)  # low degrees
    dense_part = blob_graph([90, 100], seed=5, p_in=0.5)  # high degrees (a normalised block)
    dense_part.data = np.abs(dense_part.data) * 40
    a = sparse.block_diag([sparse_part, dense_part]).tocsr()
    degrees = np.asarray(a.sum(axis=1)).ravel()
    m = normalized_affinity(a, 0.3 * degrees.mean())
    vals, vecs, info = top_eigenpairs(m, k, unit_top=False)
    assert info.n_components == 5 and info.closed_form == 0
    assert_exact(m, vals, vecs, k)
    with pytest.raises(ValueError, match="sqrt_degrees"):
        top_eigenpairs(m, k, unit_top=False, sqrt_degrees=np.sqrt(degrees))
