"""C_ell against direct pyccl calls, the DESIGN 3 reference values, and the cache."""

import numpy as np
import pytest

import nulens.cosmology as cosmo_mod
from nulens.config import Cosmology
from nulens.cosmology import convergence_cl
from nulens.errors import InputError


def direct_pyccl_cl(m_nu, ell, z_s=(1.0,), sigma8=None):
    """An independent pyccl call written out in full (DESIGN 3 recipe)."""
    import pyccl

    bare = pyccl.Cosmology(Omega_c=0.2, Omega_b=0.046, h=0.7, n_s=0.97, A_s=2.1e-9, m_nu=m_nu, mass_split="equal")
    omega_c = 0.3 - 0.046 - bare["Omega_nu_mass"]
    norm = {"sigma8": sigma8} if sigma8 else {"A_s": 2.1e-9}
    c = pyccl.Cosmology(Omega_c=omega_c, Omega_b=0.046, h=0.7, n_s=0.97, m_nu=m_nu, mass_split="equal",
                        transfer_function="boltzmann_camb", matter_power_spectrum="camb",
                        extra_parameters={"camb": {"halofit_version": "mead2020", "kmax": 100}}, **norm)
    assert abs(c["Omega_m"] - 0.3) < 1e-12
    trs = []
    for z in z_s:
        zz = np.linspace(z - 0.06, z + 0.06, 401)
        trs.append(pyccl.WeakLensingTracer(c, dndz=(zz, np.exp(-0.5 * ((zz - z) / 0.01) ** 2))))
    out = np.array([[pyccl.angular_cl(c, a, b, ell) for b in trs] for a in trs])
    return out, pyccl.sigma8(c)


@pytest.mark.parametrize("m_nu", [0.0, 0.1])
def test_cl_matches_direct_pyccl(m_nu):
    ell = np.array([50.0, 300.0, 1000.0, 5000.0, 20000.0])
    ours = convergence_cl(ell, Cosmology(m_nu=m_nu))
    ref, s8 = direct_pyccl_cl(m_nu, ell)
    np.testing.assert_allclose(ours.cl, ref, rtol=1e-6, atol=0)
    assert abs(ours.sigma8 - s8) < 1e-9


def test_design_reference_values():
    ell = np.array([1000.0])
    c0 = convergence_cl(ell, Cosmology(m_nu=0.0))
    c1 = convergence_cl(ell, Cosmology(m_nu=0.1))
    ratio = c1.cl[0, 0, 0] / c0.cl[0, 0, 0]
    ref0, _ = direct_pyccl_cl(0.0, ell)
    ref1, _ = direct_pyccl_cl(0.1, ell)
    assert ratio == pytest.approx(ref1[0, 0, 0] / ref0[0, 0, 0], rel=1e-6)
    assert ratio == pytest.approx(0.934, abs=0.002)  # DESIGN 3
    assert c0.sigma8 == pytest.approx(0.850, abs=0.002)
    assert c1.sigma8 == pytest.approx(0.828, abs=0.002)
    assert c1.Omega_c == pytest.approx(0.3 - 0.046 - 0.1 / (93.14 * 0.49), abs=2e-4)


def test_cross_spectra_and_symmetry():
    ell = np.array([200.0, 2000.0])
    s = convergence_cl(ell, Cosmology(m_nu=0.1), z_source=(0.5, 1.0))
    ref, _ = direct_pyccl_cl(0.1, ell, z_s=(0.5, 1.0))
    np.testing.assert_allclose(s.cl, ref, rtol=1e-6)
    np.testing.assert_array_equal(s.cl[0, 1], s.cl[1, 0])
    # correlated, not identical: 0 < r < 1
    r = s.cl[0, 1] / np.sqrt(s.cl[0, 0] * s.cl[1, 1])
    assert np.all((r > 0.3) & (r < 1.0))


def test_sigma8_fixed_option():
    s = convergence_cl([1000.0], Cosmology(m_nu=0.1, sigma8=0.8))
    ref, s8 = direct_pyccl_cl(0.1, np.array([1000.0]), sigma8=0.8)
    assert s.sigma8 == pytest.approx(0.8, rel=1e-6) and s8 == pytest.approx(0.8, rel=1e-6)
    np.testing.assert_allclose(s.cl[0, 0], ref[0, 0], rtol=1e-6)
    assert np.isnan(s.A_s)


def test_zero_below_ell_2():
    s = convergence_cl([0.0, 1.0, 1.99, 2.0], Cosmology())
    assert np.all(s.cl[0, 0, :3] == 0) and s.cl[0, 0, 3] > 0


def test_cache_hits_and_misses(tmp_path, monkeypatch):
    monkeypatch.setenv("NULENS_CACHE", str(tmp_path))
    monkeypatch.setattr(cosmo_mod, "_memory", {})
    calls = []
    real = cosmo_mod._compute
    monkeypatch.setattr(cosmo_mod, "_compute", lambda *a: calls.append(a) or real(*a))
    ell = np.array([500.0, 1500.0])
    a = convergence_cl(ell, Cosmology(m_nu=0.0))
    assert len(calls) == 1 and len(list(tmp_path.glob("cl-*.npz"))) == 1
    monkeypatch.setattr(cosmo_mod, "_memory", {})  # a new process: the disk entry serves
    b = convergence_cl(ell, Cosmology(m_nu=0.0))
    assert len(calls) == 1
    np.testing.assert_array_equal(a.cl, b.cl)
    # every input is part of the key
    for changed in (dict(cosmology=Cosmology(Omega_b=0.047)), dict(z_source=(1.1,)), dict(nz_width=0.02)):
        kw = dict(cosmology=Cosmology(), z_source=(1.0,), nz_width=0.01) | changed
        c = convergence_cl(ell, **kw)
        assert not np.allclose(c.cl, a.cl, rtol=1e-8, atol=0)
    c = convergence_cl(ell * 1.001, Cosmology())
    assert not np.array_equal(c.cl, a.cl)
    assert len(calls) == 5


@pytest.mark.parametrize("kw", [dict(m_nu=-0.1), dict(Omega_m=0.04), dict(Omega_m=0.046), dict(A_s=2e-9, sigma8=0.8),
                                dict(mass_split="heavy"), dict(h=float("nan"))])
def test_impossible_cosmology(kw):
    with pytest.raises(InputError):
        Cosmology(**kw)
