"""An approximate nearest-neighbour index of a feature file, saved beside it, for search in a
second at a million rows.

The index is faiss's (the field library for exactly this): the rows reduced by a PCA to
:data:`PCA_DIMS` dimensions (fitted on a sample), in an inverted file of about ``sqrt(N)``
lists, each row stored as 8-bit codes (``IndexIVFScalarQuantizer``, ``QT_8bit``: a quarter of
float32, so the index of a million rows loads in a fraction of a second). A query visits :data:`NPROBE` lists, takes the :data:`RERANK` nearest
candidates in the reduced space, and ranks those again by their exact Euclidean distance in the
full feature space (rows read from the memory-mapped file). So the distances shown are exact;
only a row the index did not propose can be missed: recall@10 against the exact scan
(:func:`tcdn.search.nearest`) is measured by ``benchmarks/bench_search.py`` and the tests.

The index file, ``FEATURES.index`` (e.g. ``feats.npz.index``), records a digest of the feature
file it was built from (:func:`~tcdn.features.npzfile.npz_digest`: the CRC-32s the zip holds, read
without reading the features): an index of another version of the file is stale, and is built
again rather than used.
"""

from __future__ import annotations

import json
import logging
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tcdn.errors import TcdnError
from tcdn.features.featureset import FeatureSet
from tcdn.features.npzfile import npz_digest, write_npz
from tcdn.outputs import atomic_writer, check_output_file
from tcdn.search import Answer, ranked_answer

log = logging.getLogger(__name__)

INDEX_FORMAT = "tcdn-search-index-1"
#: dimensions of the PCA the index works in
PCA_DIMS = 128
#: inverted lists visited per query
NPROBE = 16
#: candidates ranked again by their exact distance
RERANK = 256
#: rows drawn to fit the PCA and the lists' centres
TRAIN_SAMPLE = 50_000
#: rows at and above which ``tcdn search`` builds an index by itself (below, the scan is quick)
AUTO_INDEX_ROWS = 100_000
_ADD_CHUNK = 65_536


def index_path(features: str | Path) -> Path:
    """Where the index of the feature file ``features`` lives: ``features`` + ``.index``."""
    features = Path(features)
    return features.with_name(features.name + ".index")


def is_index_file(path: str | Path) -> bool:
    """Whether ``path`` is a search index tcdn wrote (which it may replace)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, TypeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == INDEX_FORMAT


@dataclass
class SearchIndex:
    """A faiss inverted file of one feature file's rows reduced by a PCA (``mean``,
    ``components``), and what it was built from."""

    index: Any
    mean: np.ndarray
    components: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def reduce(self, rows: np.ndarray) -> np.ndarray:
        """``(n, D)`` rows -> ``(n, pca_dims)`` float32, as the index holds them."""
        centred = np.asarray(rows, dtype=np.float32) - self.mean
        return np.ascontiguousarray(centred @ self.components.T, dtype=np.float32)

    def candidates(self, vector: np.ndarray, n: int, nprobe: int = NPROBE) -> np.ndarray:
        """The rows of the ``n`` nearest candidates of ``vector`` in the index (nearest first)."""
        self.index.nprobe = min(int(nprobe), int(self.index.nlist))
        _, rows = self.index.search(self.reduce(np.reshape(vector, (1, -1))), int(n))
        rows = rows[0]
        return rows[rows >= 0]


def n_lists(n_rows: int) -> int:
    """Inverted lists for ``n_rows`` rows: about ``sqrt(n_rows)``, each list trained on at least
    39 sampled rows (faiss's own rule of thumb)."""
    sample = min(n_rows, TRAIN_SAMPLE)
    return max(1, min(round(np.sqrt(n_rows)), sample // 39))


def build_index(fs: FeatureSet, *, seed: int = 0, pca_dims: int = PCA_DIMS) -> SearchIndex:
    """Build the index of ``fs``'s rows (a memory-mapped file's rows are read chunk by chunk).

    Raises :class:`TcdnError` on NaN or infinite features (named by row)."""
    import faiss
    from sklearn.decomposition import PCA

    x = fs.features
    n, d = x.shape
    if n == 0:
        raise TcdnError("the feature file has no rows to index")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, min(n, TRAIN_SAMPLE), replace=False))
    train = np.ascontiguousarray(x[sample], dtype=np.float32)
    _check_finite(train, sample)
    dims = int(min(pca_dims, d, len(sample)))
    lists = n_lists(n)
    pca = PCA(dims, svd_solver="randomized", random_state=seed).fit(train)
    idx = SearchIndex(None, pca.mean_.astype(np.float32), pca.components_.astype(np.float32), {})
    reduced = idx.reduce(train)
    del train
    idx.index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatL2(dims), dims, lists, faiss.ScalarQuantizer.QT_8bit
    )
    idx.index.cp.seed = seed
    idx.index.train(reduced)
    for s in range(0, n, _ADD_CHUNK):
        chunk = np.asarray(x[s : s + _ADD_CHUNK], dtype=np.float32)
        _check_finite(chunk, np.arange(s, s + len(chunk)))
        idx.index.add(idx.reduce(chunk))
    seconds = time.perf_counter() - start
    meta = {
        "format": INDEX_FORMAT,
        "rows": int(n),
        "dims": int(d),
        "pca_dims": dims,
        "lists": lists,
        "seed": seed,
        "build_seconds": round(seconds, 2),
    }
    idx.meta = meta
    log.info(
        "built a search index of %d x %d rows (PCA to %d, %d lists) in %.1f s",
        n, d, dims, lists, seconds,
    )  # fmt: skip
    return idx


def _check_finite(rows: np.ndarray, where: np.ndarray) -> None:
    ok = np.isfinite(rows).all(axis=1)
    if not ok.all():
        bad = int(where[np.flatnonzero(~ok)[0]])
        raise TcdnError(
            f"the features hold NaN or infinite values (first in row {bad}): they cannot be indexed"
        )


def save_index(idx: SearchIndex, path: str | Path, features: str | Path) -> Path:
    """Write ``idx`` to ``path`` atomically, with the digest of the feature file it indexes. An
    existing file there that is not a tcdn index is refused (left alone)."""
    import faiss

    path = check_output_file(path, "the search index", ours=is_index_file)
    meta = {**idx.meta, "features": str(features), "features_digest": npz_digest(features)}
    with atomic_writer(path) as fh:
        write_npz(
            fh,
            index=faiss.serialize_index(idx.index),
            mean=idx.mean,
            components=idx.components,
            meta=np.array(json.dumps(meta)),
        )
    idx.meta = meta
    return path


def load_index(path: str | Path, features: str | Path, fs: FeatureSet) -> SearchIndex | None:
    """The index at ``path`` if it was built from the feature file ``features`` as it is now
    (``fs``, its contents); ``None`` (with a warning) if it is stale. Raises :class:`TcdnError`
    when the file is not a tcdn index or cannot be read."""
    import faiss

    path = Path(path)
    if not is_index_file(path):
        raise TcdnError(
            f"{path} is not a search index written by tcdn (or it is damaged): move it away, or "
            "search with --exact"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("features_digest") != npz_digest(features):
                log.warning("the search index %s is of another version of %s", path, features)
                return None
            raw, mean, components = npz["index"], npz["mean"], npz["components"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise TcdnError(
            f"cannot read the search index {path}: {exc}; delete it, it is rebuilt"
        ) from exc
    if meta.get("rows") != len(fs) or meta.get("dims") != fs.features.shape[1]:
        log.warning("the search index %s does not fit %s's rows", path, features)
        return None
    return SearchIndex(faiss.deserialize_index(raw), mean, components, meta)


def open_index(features: str | Path, fs: FeatureSet, *, build: bool) -> SearchIndex | None:
    """The index beside the feature file ``features``: read if it is there and current; else, with
    ``build``, built and saved beside it; else ``None``."""
    path = index_path(features)
    idx = load_index(path, features, fs) if path.exists() else None
    if idx is None and build:
        idx = build_index(fs)
        try:
            save_index(idx, path, features)
            log.info("saved the search index %s", path)
        except TcdnError as exc:  # e.g. a read-only folder: search with it all the same
            log.warning("%s; the index is built again at every search (or use --exact)", exc)
    return idx


def approximate_nearest(
    fs: FeatureSet,
    idx: SearchIndex,
    vector: np.ndarray,
    k: int = 10,
    *,
    exclude: int | None = None,
    nprobe: int = NPROBE,
    rerank: int = RERANK,
) -> Answer:
    """:func:`tcdn.search.nearest` through the index: the ``max(rerank, 4k)`` candidates it
    proposes ranked by their exact distance; the nearest videos are those among the candidates."""
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != fs.features.shape[1]:
        raise TcdnError(
            f"the query has {q.shape[0]} dimensions but the features have {fs.features.shape[1]}"
        )
    rows = idx.candidates(q, max(rerank, 4 * k) + 1, nprobe)
    if exclude is not None:
        rows = rows[rows != exclude]
    rows = np.sort(rows)  # read the file in order
    diff = np.asarray(fs.features[rows], dtype=np.float64) - q.astype(np.float64)
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    order = np.lexsort((rows, dist))  # by distance, then row: as the stable exact sort
    return ranked_answer(fs, rows[order], dist[order], k)


def open_features(path: str | Path) -> FeatureSet:
    """A feature file for search: its features memory-mapped (an uncompressed file, as tcdn
    writes), else read whole."""
    try:
        return FeatureSet.load(path, mmap=True)
    except TcdnError as exc:
        if "compressed" not in str(exc):
            raise
        return FeatureSet.load(path)
