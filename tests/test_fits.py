"""FITS interchange in the MassiveNuS layout."""

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from nulens.cli import app
from nulens.fits import parse_m_nu
from nulens.store import open_dataset


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write_massivenus(root, m_nu, n, npix=16, angle=3.5, seed=0):
    folder = root / f"convergence_gal_mnv{m_nu:.5f}_om0.30000_As2.1000" / "Maps10"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    maps = rng.normal(size=(n, npix, npix)).astype(np.float32)
    for i, m in enumerate(maps):
        hdu = fits.PrimaryHDU(m)
        hdu.header["ANGLE"] = angle
        hdu.writeto(folder / f"WLconv_z1.00_{i + 1:04d}r.fits")
    return folder.parent, maps


def test_parse_m_nu():
    assert parse_m_nu("x/convergence_gal_mnv0.10000_om0.30000_As2.1000/Maps10") == 0.1
    assert parse_m_nu("convergence_gal_mnv0.00000_om0.30000_As2.1000") == 0.0
    assert parse_m_nu("maps/run1") is None


def test_massivenus_folders_to_dataset_in_one_command(tmp_path):
    f1, m1 = write_massivenus(tmp_path, 0.1, 3, seed=1)
    f0, m0 = write_massivenus(tmp_path, 0.0, 4, seed=0)
    out = tmp_path / "imported.h5"
    r = invoke("import-fits", out, f1, f0)  # order of PATHs does not matter: labels by ascending M_nu
    assert r.exit_code == 0, r.output
    with open_dataset(out) as ds:
        assert ds.shape == (7, 1, 16, 16) and ds.side_deg == 3.5
        assert [c["m_nu"] for c in ds.classes] == [0.0, 0.1]
        got0 = ds.read(np.flatnonzero(ds.labels == 0))[:, 0]
        got1 = ds.read(np.flatnonzero(ds.labels == 1))[:, 0]
        np.testing.assert_array_equal(got0, m0)
        np.testing.assert_array_equal(got1, m1)
        assert ds.params["z_s"][0] == 1.0


def test_export_then_import_roundtrip(tmp_path):
    data = tmp_path / "sim.h5"
    assert invoke("simulate", data, "--n-per-class", 3, "--pixels", 16, "--quiet").exit_code == 0
    r = invoke("export-fits", data, tmp_path / "fits")
    assert r.exit_code == 0, r.output
    folders = sorted((tmp_path / "fits").iterdir())
    assert [f.name for f in folders] == ["convergence_gal_mnv0.00000_om0.30000_As2.1000",
                                         "convergence_gal_mnv0.10000_om0.30000_As2.1000"]
    hdr = fits.getheader(folders[1] / "Maps10" / "WLconv_z1.00_0001r.fits")
    assert hdr["ANGLE"] == 3.5
    back = tmp_path / "back.h5"
    assert invoke("import-fits", back, *folders).exit_code == 0
    with open_dataset(data) as a, open_dataset(back) as b:
        np.testing.assert_array_equal(a.read(), b.read())
        np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize("defect", ["nonsquare", "nan", "size", "angle", "noangle"])
def test_bad_fits_named_in_one_line(tmp_path, defect):
    f0, _ = write_massivenus(tmp_path, 0.0, 2)
    f1, _ = write_massivenus(tmp_path, 0.1, 2)
    bad = f1 / "Maps10" / "WLconv_z1.00_0002r.fits"
    data = {"nonsquare": np.zeros((16, 12)), "nan": np.full((16, 16), np.nan), "size": np.zeros((8, 8))}.get(
        defect, np.zeros((16, 16)))
    hdu = fits.PrimaryHDU(data.astype(np.float32))
    if defect != "noangle":
        hdu.header["ANGLE"] = 5.0 if defect == "angle" else 3.5
    hdu.writeto(bad, overwrite=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    out = tmp_path / "o.h5"
    r = invoke("import-fits", out, f0, f1)
    assert r.exit_code == 2
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "WLconv_z1.00_0002r.fits" in lines[0], r.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_import_needs_m_nu_for_plain_folders(tmp_path):
    d = tmp_path / "plain"
    d.mkdir()
    fits.PrimaryHDU(np.zeros((8, 8), np.float32), header=fits.Header([("ANGLE", 2.0)])).writeto(d / "a.fits")
    r = invoke("import-fits", tmp_path / "o.h5", d)
    assert r.exit_code == 2 and "--m-nu" in r.output
    r = invoke("import-fits", tmp_path / "o.h5", d, "--m-nu", "0.2")
    assert r.exit_code == 0, r.output
