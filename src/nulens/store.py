"""HDF5 datasets of maps (DESIGN 4): atomic write, lazy read.

Layout of one file::

    /maps    float32 (n, channels, N, N), one map per chunk
    /label   int64 (n,)
    /params  compound table, one row per map (m_nu, Omega_m, ..., sigma8, z_s..., seed, index)
    /cl      float64 (n_classes, channels, channels, n_ell): the C_ell each class was drawn from
    /cl_ell  float64 (n_ell,)
    attrs    format="nulens-dataset", format_version, nulens_version, config (JSON),
             side_deg, pixels, channels, classes (JSON: m_nu, sigma8, Omega_c per label), ...

Files are written to a temporary name in the same folder and renamed into
place, so a reader never sees a half-written dataset.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .errors import InputError

__all__ = ["Dataset", "open_dataset", "write_dataset", "atomic_path", "check_output_path", "create_preallocated", "map_offsets",
           "finish_dataset", "FORMAT", "FORMAT_VERSION"]

FORMAT = "nulens-dataset"
FORMAT_VERSION = 1


def check_output_path(path: str | Path) -> Path:
    """The folder of an output file, which must exist and be writable; the path must not be a folder."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise InputError(f"output folder is not writable: {parent}")
    if path.is_dir():
        raise InputError(f"output path is a folder: {path}")
    return parent


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp"):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success, delete it otherwise."""
    path = Path(path)
    parent = check_output_path(path)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_dataset(
    path: str | Path,
    maps: Iterator[np.ndarray] | np.ndarray,
    labels: np.ndarray,
    params: np.ndarray,
    attrs: dict[str, Any],
    cl_ell: np.ndarray | None = None,
    cl: np.ndarray | None = None,
    shape: tuple[int, int, int] | None = None,
) -> None:
    """Write a dataset atomically.

    ``maps`` is an array (n, C, N, N) or an iterator of blocks (k, C, N, N) in
    order (then ``shape`` = (C, N, N) is required); ``attrs`` values that are not
    scalars or strings are stored as JSON.
    """
    labels = np.asarray(labels, dtype=np.int64)
    n = labels.size
    if shape is None:
        maps = np.asarray(maps)
        shape = maps.shape[1:]
        blocks = [maps]
    else:
        blocks = maps
    with atomic_path(path, ".h5") as tmp:
        with h5py.File(tmp, "w") as f:
            dset = f.create_dataset("maps", shape=(n, *shape), dtype=np.float32, chunks=(1, *shape))
            start = 0
            for block in blocks:
                dset[start : start + len(block)] = block
                start += len(block)
            if start != n:
                raise RuntimeError(f"wrote {start} maps, expected {n}")
            _write_meta(f, labels, params, attrs, cl_ell, cl)


def create_preallocated(path: str | Path, n: int, shape: tuple[int, int, int]) -> None:
    """An HDF5 file whose /maps (n, *shape) float32, one map per chunk, has every chunk allocated now
    and is never filled: its bytes can then be written in place by any process (:func:`map_offsets`)."""
    with h5py.File(path, "w") as f:
        space = h5py.h5s.create_simple((n, *shape))
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((1, *shape))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        h5py.h5d.create(f.id, b"maps", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)


def map_offsets(path: str | Path, n: int, shape) -> np.ndarray:
    """File byte offset of each map's chunk in a :func:`create_preallocated` file (checked complete)."""
    with h5py.File(path, "r") as f:
        d = f["maps"]
        if d.shape != (n, *shape) or d.chunks != (1, *shape) or d.compression is not None:
            raise ValueError("unexpected /maps layout")
        offsets = np.full(n, -1, dtype=np.int64)

        def visit(info):
            offsets[info.chunk_offset[0]] = info.byte_offset

        d.id.chunk_iter(visit)
    if np.any(offsets < 0):
        raise ValueError("unallocated chunks")
    return offsets


def finish_dataset(path: str | Path, labels, params, attrs: dict[str, Any], cl_ell=None, cl=None) -> None:
    """Add /label, /params, /cl and the root attributes to a file whose /maps is written."""
    with h5py.File(path, "r+") as f:
        _write_meta(f, labels, params, attrs, cl_ell, cl)


def _write_meta(f, labels, params, attrs, cl_ell, cl) -> None:
    for name in ("label", "params", "cl", "cl_ell"):  # a finish interrupted by a kill is redone
        if name in f:
            del f[name]
    f.create_dataset("label", data=np.asarray(labels, dtype=np.int64))
    f.create_dataset("params", data=params)
    if cl is not None:
        f.create_dataset("cl", data=np.asarray(cl, dtype=np.float64))
        f.create_dataset("cl_ell", data=np.asarray(cl_ell, dtype=np.float64))
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    for key, value in attrs.items():
        f.attrs[key] = value if isinstance(value, (str, int, float, np.number)) else json.dumps(value)


class Dataset:
    """A nulens HDF5 dataset opened for lazy reading (use as a context manager).

    ``maps`` is the h5py dataset (nothing is loaded until indexed); ``labels``
    and ``params`` are small and loaded.  ``batches`` iterates in blocks so a
    file larger than memory can be streamed.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"no such file: {self.path}")
        if self.path.is_dir():
            raise InputError(f"expected an HDF5 file, got a folder: {self.path}")
        if not h5py.is_hdf5(self.path):
            raise InputError(f"not an HDF5 file (or damaged): {self.path}")
        try:
            self._file = h5py.File(self.path, "r")
        except OSError as exc:
            raise InputError(f"cannot read HDF5 file {self.path}: {exc}") from None
        try:
            f = self._file
            if f.attrs.get("format") != FORMAT:
                raise InputError(f"{self.path} is an HDF5 file but not a nulens dataset (no format={FORMAT!r})")
            if int(f.attrs.get("format_version", -1)) > FORMAT_VERSION:
                raise InputError(f"{self.path} was written by a newer nulens (format {f.attrs['format_version']})")
            for name in ("maps", "label", "params"):
                if name not in f:
                    raise InputError(f"{self.path} is damaged: no /{name}")
            self.maps = f["maps"]
            if self.maps.ndim != 4 or self.maps.shape[-1] != self.maps.shape[-2]:
                raise InputError(f"{self.path}: /maps must be (n, channels, N, N), got {self.maps.shape}")
            self.labels = f["label"][()]
            self.params = f["params"][()]
            if len(self.labels) != len(self.maps) or len(self.params) != len(self.maps):
                raise InputError(f"{self.path} is damaged: /maps, /label and /params differ in length")
            self.attrs = {k: _decode(v) for k, v in f.attrs.items()}
        except InputError:
            self._file.close()
            raise
        except (OSError, KeyError, ValueError) as exc:
            self._file.close()
            raise InputError(f"{self.path} is damaged: {exc}") from None

    # geometry and metadata -------------------------------------------------
    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.maps.shape)

    @property
    def channels(self) -> int:
        return self.maps.shape[1]

    @property
    def pixels(self) -> int:
        return self.maps.shape[-1]

    @property
    def side_deg(self) -> float:
        return float(self.attrs["side_deg"])

    @property
    def config(self) -> dict[str, Any]:
        return self.attrs.get("config", {})

    @property
    def classes(self) -> list[dict[str, Any]]:
        """One dict per label: at least m_nu; sigma8 and Omega_c for simulated data."""
        return self.attrs.get("classes", [])

    def cl(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(ell, C_ell) used for each class, C_ell of shape (n_classes, C, C, n_ell), or None."""
        if "cl" not in self._file:
            return None
        return self._file["cl_ell"][()], self._file["cl"][()]

    # reading ------------------------------------------------------------------
    def read(self, indices=None) -> np.ndarray:
        """Maps at ``indices`` (any order; default all) as float32 (k, C, N, N)."""
        if indices is None:
            return self.maps[()]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return np.empty((0, *self.shape[1:]), np.float32)
        order = np.argsort(idx, kind="stable")
        sorted_idx = idx[order]
        uniq, inverse = np.unique(sorted_idx, return_inverse=True)
        block = self.maps[uniq] if uniq.size < len(self) else self.maps[()]
        out = np.empty((idx.size, *self.shape[1:]), np.float32)
        out[order] = block[inverse]
        return out

    def pooled_rms(self, indices=None, batch: int = 512) -> float:
        """Pixel rms pooled over the maps at ``indices`` (default all): the one fixed input scale of a
        dataset (never a per-map rms).  Non-finite pixels are an InputError naming the map."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        total, count = 0.0, 0
        for s in range(0, idx.size, batch):
            m = self.read(idx[s : s + batch]).astype(np.float64)
            finite = np.isfinite(m).all(axis=(1, 2, 3))
            if not finite.all():
                raise InputError(f"{self.path}: map {int(idx[s + np.flatnonzero(~finite)[0]])} has non-finite pixels")
            total += float(np.sum(m**2))
            count += m.size
        return float(np.sqrt(total / count))

    def batches(self, batch_size: int = 256, indices=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (maps, labels) in blocks of ``batch_size`` over ``indices`` (default all, in order)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        for s in range(0, idx.size, batch_size):
            sel = idx[s : s + batch_size]
            yield self.read(sel), self.labels[sel]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Dataset":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Dataset({str(self.path)!r}, n={len(self)}, shape={self.shape[1:]}, classes={[c.get('m_nu') for c in self.classes]})"


def open_dataset(path: str | Path) -> Dataset:
    """Open a nulens HDF5 dataset lazily; bad, foreign or damaged files raise InputError."""
    return Dataset(path)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
