"""2-D projections: PCA (scikit-learn; truncated SVD for sparse codes) and UMAP (umap-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vislens.errors import InputError

METHODS: tuple[str, ...] = ("umap", "pca")


def project(
    x_nd: Any, method: str, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1
) -> np.ndarray:
    """``[n, 2]`` float32 coordinates of the rows of ``x_nd`` (dense array or scipy sparse)."""
    import scipy.sparse as sp

    n = x_nd.shape[0]
    if n < 3:
        raise InputError(f"a map needs at least 3 items, got {n}")
    if method == "pca":
        if sp.issparse(x_nd):
            from sklearn.decomposition import TruncatedSVD

            out = TruncatedSVD(n_components=2, random_state=seed).fit_transform(x_nd)
        else:
            from sklearn.decomposition import PCA

            out = PCA(n_components=2, random_state=seed).fit_transform(np.asarray(x_nd))
    elif method == "umap":
        import umap

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=max(2, min(n_neighbors, n - 1)),
            min_dist=min_dist,
            random_state=seed,
            metric="cosine",
            n_jobs=1,  # a seeded UMAP runs on one thread anyway; say so to silence its warning
        )
        out = reducer.fit_transform(x_nd)
    else:
        raise InputError(f"--method {method!r}: choose one of {', '.join(METHODS)}")
    out = np.asarray(out, dtype=np.float32)
    if out.shape[1] < 2:  # one informative direction only (e.g. rank-1 data)
        out = np.column_stack([out, np.zeros(n, dtype=np.float32)])
    return out
