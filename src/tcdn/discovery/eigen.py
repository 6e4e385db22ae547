"""The top eigenpairs of a normalised affinity ``M = D^-1/2 A D^-1/2``: exact, bounded, never
stalling.

Spectral clustering and the eigengap estimate of K both need the top-k eigenpairs of ``M``. On
real video features the neighbour graph falls into many connected components (one or a few per
video), so ``M`` has the eigenvalue 1 once per component and dozens more within 1e-4 of it.
ARPACK's Lanczos, asked for the top k with no shift (what tcdn did), either runs for minutes or
reports convergence with eigenvalues that are wrong by up to 0.58: a Krylov space grown from one
start vector holds one vector of a repeated eigenvalue, and extra copies only enter by rounding.
Measured on realistic graphs (``benchmarks/bench_cluster.py``; the study behind this module
compared plain and wider Lanczos, shift-invert, LOBPCG with and without an algebraic-multigrid
preconditioner, Chebyshev subspace iteration and a component split), what is exact and fast
everywhere is:

0. a dense ``M`` (at most a few thousand rows), or a sparse one of at most ``DENSE_MAX`` rows, is
   solved exactly with dense LAPACK;
1. split a sparse ``M`` into its connected components (it is block diagonal, its spectrum the union of
   the blocks'); with ``c`` components a component can place at most ``k - c + 1`` eigenvalues
   among the top ``k``, so only that many are computed per component; when that is one (at least
   ``k`` components, the usual case of video features) it is the Perron pair ``(1, D^1/2 1)``,
   known in closed form from the affinity's degrees (``sqrt_degrees``) and only checked;
2. solve small components (and small problems) exactly with dense LAPACK, every copy of 1
   included;
3. solve each large component (its eigenvalue 1 is simple, by Perron-Frobenius, so no copy can
   be missed) by Lanczos on ``(L - sigma I)^-1``, ``L = I - M``, ``sigma < 0``: the cluster of
   eigenvalues next to 1 is spread far apart; the sparse LU uses the minimum-degree ordering of
   ``A + A^T``, which on a 32k-frame video graph had 4.9M nonzeros and took 3 s where SciPy's
   default ordering took 23M and 31 s;
4. if that fails or does not reach the tolerance: LOBPCG (a block method) preconditioned by
   pyamg's smoothed aggregation, then with a wider block, then dense LAPACK for components of at
   most ``DENSE_FALLBACK_MAX`` nodes, then the best pairs found, flagged as not converged. Every
   step has an iteration bound, and every step taken is logged at WARNING.

Exactly equal eigenvalues of different components (the eigenvalue 1 of forty components when
k = 2) are ordered by component size, largest first: any choice is exact, this one is
deterministic.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg
from scipy import sparse
from scipy.sparse.csgraph import connected_components

log = logging.getLogger(__name__)

#: nodes: a whole problem up to this size is solved with dense LAPACK
DENSE_MAX = 2000
#: nodes: components up to this size are solved with dense LAPACK
SMALL_COMPONENT_MAX = 1500
#: nodes: the last resort for an unconverged component is dense LAPACK up to this size
DENSE_FALLBACK_MAX = 6000
#: nodes: larger components skip the sparse LU (no memory bound) and go to LOBPCG-AMG
LU_MAX = 400_000


@dataclass
class EigenInfo:
    """What :func:`top_eigenpairs` did: the path, the components, and how well it converged."""

    method: str = ""
    converged: bool = True
    max_residual: float = 0.0  # max over the returned pairs of ||M v - lam v||, ||v|| = 1
    n_components: int = 1
    iterative_nodes: int = 0  # nodes of the components handed to an iterative solver
    iterations: int = 0
    closed_form: int = 0  # components whose one pair was the Perron pair (1, sqrt(degrees))
    seconds: float = 0.0
    steps: list[str] = field(default_factory=list)


def normalized_affinity(
    affinity: np.ndarray | sparse.spmatrix, tau: float = 0.0
) -> np.ndarray | sparse.csr_matrix:
    """``D^-1/2 A D^-1/2`` of a symmetric nonnegative affinity (a node of degree 0 gets a zero
    row); with ``tau > 0`` the regularised ``D_tau^-1/2 A D_tau^-1/2``, ``D_tau = D + tau I``
    (Qin & Rohe 2013), whose components' top eigenvalues are below 1: a component of low
    degree ranks lower than one of high degree."""
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    deg = np.asarray(affinity.sum(axis=1)).ravel() + tau
    inv = 1.0 / np.sqrt(np.maximum(deg, 1e-300))
    if sparse.issparse(affinity):
        scale = sparse.diags(inv)
        return sparse.csr_matrix(scale @ affinity @ scale)
    return np.asarray(affinity) * inv[:, None] * inv[None, :]


def top_eigenpairs(
    m: np.ndarray | sparse.spmatrix,
    k: int,
    *,
    tol: float = 1e-6,
    max_iter: int = 300,
    random_state: int = 0,
    sqrt_degrees: np.ndarray | None = None,
    unit_top: bool = True,
) -> tuple[np.ndarray, np.ndarray, EigenInfo]:
    """The top-``k`` eigenpairs of a normalised affinity ``m`` (symmetric, nonnegative,
    eigenvalues in ``[-1, 1]``), by the method of this module's docstring.

    Parameters
    ----------
    m
        ``(N, N)``, dense or sparse.
    k
        How many pairs, ``1 <= k <= N``.
    tol
        A pair is accepted when ``||M v - lam v|| <= tol`` (``||v|| = 1``); its eigenvalue is
        then within about ``tol**2 / gap`` of the true one.
    max_iter
        The bound on each iterative attempt (Lanczos restarts, LOBPCG iterations).
    random_state
        Seed of the start vectors.
    sqrt_degrees
        ``(N,)`` square roots of the degrees of the affinity ``A`` that ``m`` normalises: on
        every connected component ``C`` of at least 2 nodes, ``sqrt_degrees[C]`` is the
        eigenvector of ``m``'s eigenvalue 1 (``D^-1/2 A D^-1/2 D^1/2 1 = D^1/2 1``, the largest by
        Perron-Frobenius). When a graph has at least ``k`` components, that pair is all a
        component can place in the top ``k``: it is then taken as it is (its residual checked)
        instead of solved for.
    unit_top
        ``m`` is a plain ``D^-1/2 A D^-1/2``: every component of at least 2 nodes has the
        eigenvalue 1 on top, so with ``c`` components one places at most ``k - c + 1`` in the
        top ``k``. False for a regularised ``m`` (:func:`normalized_affinity` with ``tau``):
        each component is then asked for ``k`` pairs, and ``sqrt_degrees`` must be ``None``.

    Returns
    -------
    vals
        ``(k,)`` eigenvalues, descending.
    vecs
        ``(N, k)`` orthonormal eigenvectors.
    info
        An :class:`EigenInfo`; ``info.converged`` is False (and a warning logged) when the best
        pairs found still miss the tolerance.
    """
    t0 = time.perf_counter()
    n = m.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    if not unit_top and sqrt_degrees is not None:
        raise ValueError("sqrt_degrees give the eigenvalue-1 pairs of a plain normalised affinity")
    rng = np.random.default_rng(random_state)
    info = EigenInfo()
    if not sparse.issparse(m) or n <= DENSE_MAX:  # a dense or small affinity: LAPACK, exact
        info.method = "dense"
        dense = sparse.csr_matrix(m).toarray() if sparse.issparse(m) else np.asarray(m, np.float64)
        vals, vecs = _dense_top(dense, k)
        return _finish(m, vals, vecs, info, t0, tol)
    m = sparse.csr_matrix(m, dtype=np.float64)
    n_comp, label = connected_components(m, directed=False)
    info.n_components = int(n_comp)
    sizes = np.bincount(label, minlength=n_comp)
    # at most this many of a component's eigenvalues reach the top k
    need = max(1, k - n_comp + 1) if unit_top else k
    order = np.argsort(label, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # rows, vals, vecs
    for c in np.argsort(-sizes, kind="stable"):
        rows = order[starts[c] : starts[c + 1]]
        kk = min(need, len(rows))
        if kk == 1 and len(rows) > 1 and sqrt_degrees is not None:
            perron = _perron_pair(m, rows, sqrt_degrees[rows], tol)
            if perron is not None:
                info.closed_form += 1
                parts.append((rows, *perron))
                continue
        block = m[rows][:, rows]
        if len(rows) <= SMALL_COMPONENT_MAX:
            vals, vecs = _dense_top(block.toarray(), kk)
        else:
            info.iterative_nodes += len(rows)
            vals, vecs = _solve_component(block.tocsr(), kk, tol, max_iter, rng, info)
        parts.append((rows, vals, vecs))
    info.method = _method_name(info, n_comp)
    all_vals = np.concatenate([v for _, v, _ in parts])
    all_size = np.concatenate([np.full(len(v), len(r)) for r, v, _ in parts])
    owner = np.concatenate([np.full(len(v), i) for i, (_, v, _) in enumerate(parts)])
    column = np.concatenate([np.arange(len(v)) for _, v, _ in parts])
    top = np.lexsort((-all_size, -np.round(all_vals, 12)))[:k]  # by value; ties: larger component
    vecs = np.zeros((n, k))
    for j, t in enumerate(top):
        rows, _, part_vecs = parts[owner[t]]
        vecs[rows, j] = part_vecs[:, column[t]]
    return _finish(m, all_vals[top], vecs, info, t0, tol)


def _method_name(info: EigenInfo, n_comp: int) -> str:
    """The path :func:`top_eigenpairs` took on a sparse matrix, e.g.
    ``components+perron+dense``."""
    method = "components" if n_comp > 1 else "connected"
    if info.closed_form:
        method += "+perron"
    if not info.iterative_nodes and info.closed_form < n_comp:
        method += "+dense"
    if any(s.startswith("shift-invert (") for s in info.steps):
        method += "+shift-invert"
    if any(s.startswith("lobpcg (") for s in info.steps):
        method += "+lobpcg-amg"
    return method


def _perron_pair(
    m: sparse.csr_matrix, rows: np.ndarray, sqrt_deg: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The eigenpair ``(1, sqrt_deg / ||sqrt_deg||)`` of the connected component ``rows`` of
    ``m``, or ``None`` when its residual misses ``tol`` (``sqrt_deg`` not ``m``'s degrees)."""
    norm = float(np.linalg.norm(sqrt_deg))
    if not norm > 0:
        return None
    v = sqrt_deg / norm
    full = np.zeros(m.shape[0])
    full[rows] = v
    if float(np.linalg.norm(m @ full - full)) > tol:
        return None
    return np.ones(1), v[:, None]


def _dense_top(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = a.shape[0]
    vals, vecs = scipy.linalg.eigh(
        a, subset_by_index=[n - k, n - 1], driver="evr", check_finite=False
    )
    return vals[::-1].copy(), vecs[:, ::-1].copy()


def _residuals(m: Any, vals: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    if vecs.shape[1] == 0:
        return np.zeros(0)
    r = m @ vecs - vecs * vals
    return np.linalg.norm(r, axis=0) / np.maximum(np.linalg.norm(vecs, axis=0), 1e-300)


def _shift_invert(
    m: sparse.csr_matrix, k: int, tol: float, max_iter: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of a connected ``m`` by Lanczos on ``(L - sigma I)^-1``, ``sigma = -1e-5``:
    eigenvalues ``mu`` of ``L`` near 0 become ``1 / (mu - sigma)``, so ``mu = 0, 1e-4, 2e-4``
    spread to ``1e5, 9e3, 5e3``. Raises ArpackNoConvergence after ``max_iter`` restarts."""
    from scipy.sparse.linalg import LinearOperator, eigsh, splu

    sigma = -1e-5
    n = m.shape[0]
    shifted = (sparse.identity(n, format="csc") * (1.0 - sigma) - m).tocsc()
    lu = splu(
        shifted,
        permc_spec="MMD_AT_PLUS_A",
        diag_pivot_thresh=0.0,
        options={"SymmetricMode": True},
    )
    op = LinearOperator((n, n), matvec=lu.solve, matmat=lu.solve, dtype=np.float64)
    ncv = min(n - 1, max(2 * k + 1, 20))
    mu, vecs = eigsh(
        op,
        k=k,
        which="LA",
        v0=rng.standard_normal(n),
        ncv=ncv,
        tol=min(tol, 1e-3) * 1e-2,
        maxiter=max_iter,
    )
    vals = 1.0 - (sigma + 1.0 / mu)
    order = np.argsort(-vals, kind="stable")
    return vals[order], vecs[:, order]


def _lobpcg_amg(
    m: sparse.csr_matrix,
    k: int,
    tol: float,
    max_iter: int,
    block: int,
    rng: np.random.Generator,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Top-``k`` by LOBPCG on ``L = I - m`` (smallest), block ``block``, preconditioned by pyamg's
    smoothed aggregation on ``L + 1e-5 I`` (unpreconditioned, slower, without pyamg)."""
    from scipy.sparse.linalg import lobpcg

    n = m.shape[0]
    lap = (sparse.identity(n, format="csr") - m).tocsr()
    precond = None
    try:
        import pyamg

        solver = pyamg.smoothed_aggregation_solver(
            (lap + 1e-5 * sparse.identity(n, format="csr")).tocsr()
        )
        precond = solver.aspreconditioner()
    except ImportError:
        log.warning("pyamg is not installed: LOBPCG runs unpreconditioned (slower)")
    x = rng.standard_normal((n, block))
    if start is not None:
        x[:, : start.shape[1]] = start[:, :block]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is judged from the residuals
        mu, vecs, history = lobpcg(
            lap,
            x,
            M=precond,
            tol=tol,
            maxiter=max_iter,
            largest=False,
            retResidualNormsHistory=True,
        )
    vals = 1.0 - np.asarray(mu)
    order = np.argsort(-vals, kind="stable")[:k]
    return vals[order], vecs[:, order], len(history)


def _solve_component(
    m: sparse.csr_matrix,
    k: int,
    tol: float,
    max_iter: int,
    rng: np.random.Generator,
    info: EigenInfo,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` of one large connected component, through the fallback chain."""
    n = m.shape[0]
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    if n <= LU_MAX:
        try:
            vals, vecs = _shift_invert(m, k, tol, max_iter, rng)
            info.steps.append(f"shift-invert ({n} nodes)")
            residual = float(_residuals(m, vals, vecs).max())
            if residual <= tol:
                return vals, vecs
            best = (residual, vals, vecs)
            log.warning(
                "shift-invert Lanczos on %d nodes ended with residual %.1e > %.0e: trying "
                "LOBPCG with a multigrid preconditioner",
                n,
                residual,
                tol,
            )
        except Exception as exc:  # ArpackNoConvergence, MemoryError, a failed LU
            info.steps.append(f"shift-invert failed ({type(exc).__name__})")
            log.warning(
                "shift-invert Lanczos failed on %d nodes (%s): trying LOBPCG with a multigrid "
                "preconditioner",
                n,
                type(exc).__name__,
            )
    extra = max(k, 10)
    for block in (k + extra, k + 2 * extra + k):
        block = max(k, min(block, n // 3))
        try:
            vals, vecs, iterations = _lobpcg_amg(
                m, k, tol, max_iter, block, rng, None if best is None else best[2]
            )
        except Exception as exc:  # LinAlgError, ValueError inside LOBPCG
            info.steps.append(f"lobpcg failed ({type(exc).__name__})")
            log.warning("LOBPCG failed on %d nodes (%s)", n, type(exc).__name__)
            continue
        info.iterations += iterations
        info.steps.append(f"lobpcg (block {block}, {iterations} iterations)")
        residual = float(_residuals(m, vals, vecs).max())
        if best is None or residual < best[0]:
            best = (residual, vals, vecs)
        if residual <= tol:
            return vals, vecs
        log.warning(
            "LOBPCG (block %d) stopped after %d iterations with residual %.1e > %.0e on %d nodes",
            block,
            iterations,
            residual,
            tol,
            n,
        )
    if n <= DENSE_FALLBACK_MAX:
        info.steps.append("dense")
        log.warning("solving the %d-node component with dense LAPACK instead (exact)", n)
        return _dense_top(m.toarray(), k)
    info.converged = False
    if best is not None:
        return best[1], best[2]
    # every step raised and the component is too large for dense LAPACK: bounded subspace
    # iteration on (I + M) / 2 (positive semi-definite, the same eigenvectors), then Ritz pairs
    info.steps.append(f"subspace iteration ({max_iter} sweeps)")
    q = rng.standard_normal((n, k + extra))
    for _ in range(max_iter):
        q, _ = np.linalg.qr(0.5 * (q + m @ q))
    h = q.T @ (m @ q)
    theta, s = np.linalg.eigh((h + h.T) / 2)
    return theta[::-1][:k], (q @ s[:, ::-1])[:, :k]


def _finish(
    m: Any, vals: np.ndarray, vecs: np.ndarray, info: EigenInfo, t0: float, tol: float
) -> tuple[np.ndarray, np.ndarray, EigenInfo]:
    residuals = _residuals(m, vals, vecs)
    info.max_residual = float(residuals.max()) if len(residuals) else 0.0
    if info.max_residual > tol:
        info.converged = False
    if not info.converged:
        log.warning(
            "the eigensolver returns pairs that miss the tolerance (residual %.1e > %.0e) after %s; "
            "the clustering uses them as they are",
            info.max_residual,
            tol,
            " -> ".join(info.steps) or info.method,
        )
    info.seconds = time.perf_counter() - t0
    return vals, vecs, info
