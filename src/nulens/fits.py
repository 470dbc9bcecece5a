"""FITS interchange in the LensTools / MassiveNuS layout.

One square float image per file, header ``ANGLE`` = map side in degrees.
MassiveNuS names files ``WLconv_z{z:.2f}_{NNNN}r.fits`` in folders like
``convergence_gal_mnv0.10000_om0.30000_As2.1000/Maps10`` (Maps10: z_s = 1.0).
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .store import open_dataset, write_dataset

__all__ = ["export_fits", "import_fits", "parse_m_nu", "massivenus_folder"]

_MNU = re.compile(r"mnv(\d+(?:\.\d+)?)")
_Z = re.compile(r"WLconv_z(\d+(?:\.\d+)?)_")


def massivenus_folder(m_nu: float, omega_m: float, a_s: float, sigma8: float) -> str:
    """MassiveNuS-style folder name of a cosmology (sigma8 replaces A_s when A_s is unknown)."""
    amp = f"As{a_s * 1e9:.4f}" if math.isfinite(a_s) else f"s8{sigma8:.5f}"
    return f"convergence_gal_mnv{m_nu:.5f}_om{omega_m:.5f}_{amp}"


def parse_m_nu(path: str | Path) -> float | None:
    """M_nu [eV] from the nearest MassiveNuS folder name in ``path`` (``..._mnv0.10000_...``), else None."""
    for part in reversed(Path(path).parts):
        m = _MNU.search(part)
        if m:
            return float(m.group(1))
    return None


def export_fits(data: str | Path, out_dir: str | Path) -> int:
    """Write every map of a dataset as FITS files under ``out_dir``; returns the number of files."""
    from astropy.io import fits

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"output path exists and is not a folder: {out_dir}")
    with open_dataset(data) as ds:
        z_list = ds.attrs.get("z_source") or [float("nan")] * ds.channels
        params = ds.params
        names = params.dtype.names
        count: dict[int, int] = {}
        written = 0
        out_dir.mkdir(parents=True, exist_ok=True)
        for maps, _ in ds.batches(64):
            for m in maps:
                row = params[sum(count.values())]
                label = int(row["label"])
                count[label] = count.get(label, 0) + 1
                get = lambda k: float(row[k]) if k in names else float("nan")  # noqa: E731
                folder = out_dir / massivenus_folder(get("m_nu"), get("Omega_m"), get("A_s"), get("sigma8"))
                for j in range(ds.channels):
                    z = z_list[j]
                    sub = folder / (f"Maps{round(z * 10):02d}" if math.isfinite(z) else f"Maps_ch{j}")
                    sub.mkdir(parents=True, exist_ok=True)
                    ztag = f"{z:.2f}" if math.isfinite(z) else f"ch{j}"
                    hdr = fits.Header()
                    hdr["ANGLE"] = (ds.side_deg, "map side [deg]")
                    hdr["M_NU"] = (get("m_nu"), "sum of neutrino masses [eV]")
                    hdr["Z_S"] = (z if math.isfinite(z) else -1.0, "source redshift")
                    hdr["NLINDEX"] = (int(row["index"]) if "index" in names else -1, "map index in the nulens dataset")
                    target = sub / f"WLconv_z{ztag}_{count[label]:04d}r.fits"
                    fd, tmp = tempfile.mkstemp(dir=sub, suffix=".fits.tmp")
                    os.close(fd)
                    fits.PrimaryHDU(np.asarray(m[j], dtype=np.float32), header=hdr).writeto(tmp, overwrite=True)
                    os.replace(tmp, target)
                    written += 1
    return written


def _expand(path: str) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        files = sorted(p.rglob("*.fits"))
        if not files:
            raise InputError(f"no *.fits files under {p}")
        return files
    if p.is_file():
        return [p]
    raise InputError(f"no such file or folder: {p}")


def _read(path: Path, side_override: float | None):
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdul:
            hdu = hdul[0]
            data = None if hdu.data is None else np.asarray(hdu.data, dtype=np.float64)
            angle = hdu.header.get("ANGLE")
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read FITS file {path}: {exc}") from None
    if data is None:
        raise InputError(f"{path}: the primary HDU holds no image")
    data = np.squeeze(data)
    if data.ndim != 2 or data.shape[0] != data.shape[1]:
        raise InputError(f"{path}: map is not square (shape {data.shape})")
    if not np.all(np.isfinite(data)):
        raise InputError(f"{path}: map has {int(np.sum(~np.isfinite(data)))} non-finite pixels (NaN or inf)")
    if side_override is None:
        if angle is None:
            raise InputError(f"{path}: no ANGLE keyword in the header (give --side-deg)")
        try:
            angle = float(angle)
        except (TypeError, ValueError):
            raise InputError(f"{path}: header ANGLE is not a number: {angle!r}") from None
    else:
        angle = side_override
    if not angle > 0:
        raise InputError(f"{path}: ANGLE must be > 0 degrees, got {angle}")
    return data.astype(np.float32), angle


def import_fits(out: str | Path, paths: list[str], m_nu: list[float] | None = None,
                side_deg: float | None = None) -> tuple[int, list[dict]]:
    """Build a dataset from FITS maps: one class per PATH (a folder searched recursively, or one file).

    ``m_nu`` gives each PATH's mass [eV]; where omitted it is parsed from a
    MassiveNuS folder name.  Labels are 0, 1, ... by ascending M_nu.  Every map
    must be square, finite, and of one size and angle; otherwise InputError
    names the file.  Returns (n_maps, classes).
    """
    if not paths:
        raise InputError("give at least one PATH")
    if m_nu is not None and len(m_nu) != len(paths):
        raise InputError(f"--m-nu gives {len(m_nu)} masses for {len(paths)} PATHs")
    masses = []
    for k, p in enumerate(paths):
        mass = m_nu[k] if m_nu is not None else parse_m_nu(Path(p).resolve())
        if mass is None:
            raise InputError(f"cannot tell M_nu of {p} from its name; give --m-nu")
        if not (math.isfinite(mass) and mass >= 0):
            raise InputError(f"M_nu must be >= 0 eV, got {mass} for {p}")
        masses.append(float(mass))
    if len(set(masses)) != len(masses):
        raise InputError(f"two PATHs have the same M_nu: {masses}")
    order = np.argsort(masses)
    label_of = {int(k): int(lab) for lab, k in enumerate(order)}
    per_class = {label_of[k]: _expand(p) for k, p in enumerate(paths)}
    z_of = {}
    for lab, files in per_class.items():
        zs = {m.group(1) for f in files if (m := _Z.search(f.name))}
        if len(zs) > 1:
            raise InputError(f"{paths[order[lab]]} mixes source redshifts z = {sorted(zs)}; point at one Maps folder")
        z_of[lab] = float(zs.pop()) if zs else float("nan")
    # interleave classes (map k of each class in turn) so any prefix is balanced
    entries = sorted(((r, lab, f) for lab, files in per_class.items() for r, f in enumerate(files)),
                     key=lambda e: (e[0], e[1]))
    first, angle = _read(entries[0][2], side_deg)
    npix = first.shape[0]
    labels = np.array([e[1] for e in entries], dtype=np.int64)

    def blocks():
        for _, _, f in entries:
            data, a = _read(f, side_deg)
            if data.shape[0] != npix:
                raise InputError(f"{f}: map is {data.shape[0]}x{data.shape[0]}, the others {npix}x{npix}")
            if not math.isclose(a, angle, rel_tol=1e-6):
                raise InputError(f"{f}: ANGLE = {a} deg, the others {angle} deg")
            yield data[None, None]

    sorted_masses = [masses[k] for k in order]
    params = np.zeros(len(entries), dtype=[("label", "i8"), ("m_nu", "f8"), ("z_s", "f8"), ("index", "i8")])
    params["label"] = labels
    params["m_nu"] = np.array(sorted_masses)[labels]
    params["z_s"] = np.array([z_of[int(lab)] for lab in labels])
    params["index"] = np.arange(len(entries))
    classes = [{"label": lab, "m_nu": sorted_masses[lab], "n": len(per_class[lab]), "path": str(paths[order[lab]])}
               for lab in range(len(paths))]
    zvals = [z for z in z_of.values() if math.isfinite(z)]
    attrs = {
        "source": "fits",
        "side_deg": float(angle),
        "pixels": int(npix),
        "channels": 1,
        "z_source": [zvals[0]] if zvals and len(set(zvals)) == 1 else [float("nan")],
        "field": "imported",
        "pixel_arcmin": float(angle) * 60 / npix,
        "classes": classes,
        "config": {"import_paths": [str(p) for p in paths]},
    }
    from . import __version__

    attrs["nulens_version"] = __version__
    write_dataset(out, blocks(), labels, params, attrs, shape=(1, npix, npix))
    return len(entries), classes
