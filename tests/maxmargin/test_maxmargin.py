"""Tests of afterkernel.maxmargin against an independent hard-margin solver.

The reference solves the primal min ||w|| s.t. s_i w.phi_i >= 1 exactly as a
least-distance problem with scipy's NNLS, on explicit features phi from an
eigendecomposition of K; it shares no code with the module.  Problems are small (n <= 200) so the whole
file runs in a few seconds.
"""

import numpy as np
import pytest
from scipy.optimize import nnls

from afterkernel import maxmargin as mm


# ---------------------------------------------------------------------------
# problems and the reference solver


def clusters(n, d, seed, sep=1.5, noise=1.0):
    """Two Gaussian clusters at +-mu (symmetric about 0, so a separator
    without bias exists when they do not overlap); labels in {0, 1}."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) % 2).astype(np.uint8)
    mu = np.zeros(d)
    mu[0] = sep
    X = rng.normal(scale=noise / np.sqrt(d), size=(n, d)) + np.where(y[:, None] > 0, mu, -mu)
    return X, y


def rbf(A, B, length=1.0):
    d2 = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
    return np.exp(-np.maximum(d2, 0) / (2 * length**2))


def reference(K, y):
    """Exact hard-margin solution (margin, kernel-expansion beta: f = K beta).

    Least-distance programming (Lawson & Hanson 1974, ch. 23): min ||w||
    s.t. Z w >= 1 is solved by the NNLS problem min_{u >= 0} ||E u - e||
    with E = [Z^T; 1^T]; then w = -r[:-1] / r[-1] for r = E u - e, i.e.
    w = Z^T alpha with alpha = -u / r[-1] >= 0.  scipy's NNLS is an exact
    active-set method; Z comes from an eigendecomposition of K.
    """
    s = np.where(y > 0, 1.0, -1.0)
    evals, evecs = np.linalg.eigh(K)
    keep = evals > 1e-12 * evals.max()
    Z = s[:, None] * (evecs[:, keep] * np.sqrt(evals[keep]))
    E = np.vstack([Z.T, np.ones(len(s))])
    e = np.zeros(E.shape[0])
    e[-1] = 1.0
    u, _ = nnls(E, e, maxiter=50 * E.shape[1])
    r = E @ u - e
    assert r[-1] < -1e-12, "reference: not separable"
    alpha = -u / r[-1]
    w = Z.T @ alpha
    assert (Z @ w).min() > 1 - 1e-8
    return 1.0 / np.linalg.norm(w), alpha * s


def make_problem(kind, n, seed):
    if kind == "linear":
        X, y = clusters(n + 100, 5, seed)
        K_all = X @ X.T
    else:
        X, y = clusters(n + 100, 3, seed, sep=1.0)
        K_all = rbf(X, X, length=0.5)
    K, Kt = K_all[:n, :n], K_all[n:, :n]
    return K, y[:n], Kt, y[n:]


PROBLEMS = [("linear", 20, 0), ("linear", 200, 1), ("rbf", 60, 2), ("rbf", 150, 3)]


@pytest.fixture(scope="module", params=PROBLEMS, ids=lambda p: f"{p[0]}-n{p[1]}")
def problem(request):
    kind, n, seed = request.param
    K, y, Kt, yt = make_problem(kind, n, seed)
    gamma, beta = reference(K, y)
    return dict(K=K, y=y, Kt=Kt, yt=yt, gamma=gamma, beta=beta)


def agree_on_clear_points(f_ref, f, y_ref_scale):
    """Same sign wherever the reference is not within 5 % of the margin."""
    clear = np.abs(f_ref) > 0.05 * y_ref_scale
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(f[clear] > 0, f_ref[clear] > 0)


# ---------------------------------------------------------------------------
# both solvers against the reference


@pytest.mark.parametrize(
    "kwargs",
    [
        {"solver": "exact"},
        {"solver": "exact", "warm_start": False, "working_set": 8},
        {"solver": "alg1"},
        {"solver": "alg1", "active_set": False},
    ],
    ids=["exact", "wolfe-only-small-ws", "alg1", "alg1-plain"],
)
def test_margin_matches_reference(problem, kwargs):
    K, y, gamma = problem["K"], problem["y"], problem["gamma"]
    r = mm.solve(K, y, **kwargs)
    assert r.separable and r.converged and r.status == "optimal"
    assert r.solver == kwargs["solver"]
    assert np.all(r.coef >= 0) and np.all(np.isfinite(r.coef))
    assert r.gap <= mm.DEFAULT_TOL[r.solver]
    assert r.margin == pytest.approx(gamma, rel=1e-3)
    # the certificate brackets the optimum
    assert r.margin <= gamma * (1 + 1e-7)
    assert r.upper_bound >= gamma * (1 - 1e-7)
    # canonical scaling: training functional margins >= 1, with equality
    f_train = mm.decision_function(K, y, r.coef)
    s = np.where(y > 0, 1.0, -1.0)
    assert (s * f_train).min() == pytest.approx(1.0, rel=1e-9)
    assert mm.error_rate(f_train, y) == 0.0
    # held-out predictions agree with the reference classifier
    f_ref = problem["Kt"] @ problem["beta"]
    f = mm.decision_function(problem["Kt"], y, r.coef)
    agree_on_clear_points(f_ref, f, 1.0)


def test_exact_solver_is_accurate_beyond_default_tol(problem):
    r = mm.solve(problem["K"], problem["y"], tol=1e-9)
    assert r.margin == pytest.approx(problem["gamma"], rel=1e-6)
    assert r.gap <= 1e-9


@pytest.mark.parametrize("warm_start", [True, False])
def test_exact_solver_on_an_ill_conditioned_kernel(warm_start):
    # A smooth RBF kernel: eigenvalues from 62 down to 1e-9, margin 4.7e-4
    # (Algorithm 1 would need ~10^5 iterations here).
    X, y = clusters(250, 3, 3, sep=0.6)
    K = rbf(X, X, length=1.0)[:150, :150]
    y = y[:150]
    gamma, _ = reference(K, y)
    r = mm.solve(K, y, warm_start=warm_start, working_set=32)
    assert r.status == "optimal"
    assert r.margin == pytest.approx(gamma, rel=1e-4)
    assert r.margin <= gamma * (1 + 1e-7) and r.upper_bound >= gamma * (1 - 1e-7)


def test_exact_solver_on_float32_kernel(problem):
    r64 = mm.solve(problem["K"], problem["y"])
    r32 = mm.solve(problem["K"].astype(np.float32), problem["y"])
    assert r32.margin == pytest.approx(r64.margin, rel=1e-4)


# ---------------------------------------------------------------------------
# certificates


def test_certificate_brackets_the_optimum(problem):
    K, y, gamma = problem["K"], problem["y"], problem["gamma"]
    rng = np.random.default_rng(0)
    n = len(y)
    for _ in range(20):
        c = rng.random(n) * (rng.random(n) < 0.3)
        c[0] += 1e-3
        q = rng.dirichlet(np.ones(n) * 0.3)
        margin, _, _ = mm.certificate(K, y, c)
        _, bound, _ = mm.certificate(K, y, c, q=q)
        if np.isfinite(margin):
            assert margin <= gamma * (1 + 1e-9)
        assert bound >= gamma * (1 - 1e-9)


def test_certificate_recomputes_a_result(problem):
    r = mm.solve(problem["K"], problem["y"])
    margin, bound, gap = mm.certificate(problem["K"], problem["y"], r.coef)
    assert margin == pytest.approx(r.margin, rel=1e-9)
    # for the exact solver the dual point is coef / sum(coef)
    assert bound == pytest.approx(r.upper_bound, rel=1e-9)


# ---------------------------------------------------------------------------
# Algorithm 1: primal and kernel forms


def _features(K):
    evals, evecs = np.linalg.eigh(K)
    return evecs * np.sqrt(np.maximum(evals, 0))


@pytest.mark.parametrize("active_set", [False, True])
def test_alg1_primal_and_kernel_forms_give_the_same_iterates(active_set):
    # Scaling K by 100 sharpens the softmax, so that the active set really
    # drops points within the first iterations (Algorithm 1 is chaotic:
    # later iterates of any two float64 implementations drift apart).
    K, y, _, _ = make_problem("rbf", 80, 5)
    K = 100 * K
    Phi = _features(K)
    for T in (1, 2, 3, 10, 25, 40):
        p = mm.solve_primal_alg1(Phi, y, tol=0.0, max_iter=T)
        k = mm.solve_alg1(K, y, tol=0.0, max_iter=T, active_set=active_set)
        assert p.iterations == k.iterations == T
        np.testing.assert_allclose(k.coef, p.coef, rtol=1e-9, atol=1e-11 * p.coef.max())
        np.testing.assert_allclose(k.margin, p.margin, rtol=1e-9)
        if active_set:
            # dual bounds are evaluated between batches only: fewer are seen
            assert k.upper_bound >= p.upper_bound * (1 - 1e-12)
        else:
            np.testing.assert_allclose(k.upper_bound, p.upper_bound, rtol=1e-9)
    assert np.isfinite(p.margin)  # the last one separates
    if active_set:
        assert k.info["cache_min"] < 20  # of 80 points


def test_alg1_first_step_is_the_class_mean_direction():
    # w_1 = Z^T q_0 with q_0 uniform: c = 1/n for every point.
    K, y, _, _ = make_problem("linear", 30, 6)
    r = mm.solve_alg1(K, y, tol=0.0, max_iter=1, active_set=False)
    # coef is rescaled (to ||w|| = 1 or min margin 1) but stays uniform
    np.testing.assert_allclose(r.coef, r.coef[0])


def test_alg1_primal_and_kernel_forms_converge_to_the_same_margin(problem):
    Phi = _features(problem["K"])
    p = mm.solve_primal_alg1(Phi, problem["y"], tol=1e-4)
    k = mm.solve_alg1(problem["K"], problem["y"], tol=1e-4)
    assert p.converged and k.converged
    assert p.margin == pytest.approx(problem["gamma"], rel=1e-4)
    assert k.margin == pytest.approx(problem["gamma"], rel=1e-4)


def test_alg1_float32_products_still_certify():
    K, y, _, _ = make_problem("rbf", 150, 3)
    gamma, _ = reference(K, y)
    r = mm.solve_alg1(K, y, matvec_dtype=np.float32)
    assert r.converged and r.gap <= 1e-3
    assert r.margin <= gamma * (1 + 1e-9) <= r.upper_bound * (1 + 2e-9)
    assert r.info["refreshes"] >= 1
    margin, _, _ = mm.certificate(K, y, r.coef)
    assert margin == pytest.approx(r.margin, rel=1e-9)


# ---------------------------------------------------------------------------
# non-separable data, caps, bad input


def noisy_problem():
    X, y = clusters(120, 4, seed=7, sep=0.5)
    y = y.copy()
    y[:10] = 1 - y[:10]  # label noise: not separable (and rank 4 < n)
    return X @ X.T, y, X


# ---------------------------------------------------------------------------
# the active-set Newton method (newton.py) against the reference


def newton_only(K, y, tol=1e-10):
    """The Newton method's own result, without the Wolfe fallback (None when it gives up)."""
    from afterkernel.maxmargin.gram import SignedGram
    from afterkernel.maxmargin.newton import newton_support

    gram = SignedGram(np.asarray(K, np.float64), np.where(y > 0, 1.0, -1.0))
    a, g, _ = newton_support(gram, gram.uniform_margins(), tol, 60, {}, start=16)
    return a if a is None else (float(g.min()) / np.sqrt(float(a @ g)), a)


def test_newton_matches_reference(problem):
    # Newton alone certifies some problems (it cycles on others: then the
    # Wolfe fallback finishes); whatever certifies must be the optimum.
    out = newton_only(problem["K"], problem["y"])
    if out is not None:
        margin, a = out
        assert margin == pytest.approx(problem["gamma"], rel=1e-8)
        assert np.all(a >= 0)
    r = mm.solve(problem["K"], problem["y"], newton=True, tol=1e-10)
    assert r.status == "optimal" and r.margin == pytest.approx(problem["gamma"], rel=1e-8)


def test_newton_alone_certifies_a_full_rank_kernel():
    K, y, _, _ = make_problem("rbf", 60, 2)
    out = newton_only(K, y)
    assert out is not None and out[0] == pytest.approx(reference(K, y)[0], rel=1e-8)


def test_newton_with_duplicate_points():
    K, y, _, _ = make_problem("linear", 60, 4)
    K = np.block([[K, K], [K, K]])  # every point twice: G_FF is singular
    y = np.concatenate([y, y])
    gamma, _ = reference(K, y)
    r = mm.solve(K, y, newton=True, tol=1e-10)
    assert r.status == "optimal" and r.margin == pytest.approx(gamma, rel=1e-8)


@pytest.mark.parametrize("label", [0, 1])
def test_newton_with_one_class(label):
    K, _, _, _ = make_problem("rbf", 50, 5)
    y = np.full(50, label, dtype=np.uint8)
    gamma, _ = reference(K, y)
    r = mm.solve(K, y, newton=True, tol=1e-10)
    assert r.status == "optimal" and r.margin == pytest.approx(gamma, rel=1e-8)
    assert r.margin == pytest.approx(mm.solve(K, y, tol=1e-10).margin, rel=1e-8)


def newton_float32(K, y, tol=1e-10):
    """The Newton method's certified margin, its dual point and info on a float32 K."""
    from afterkernel.maxmargin.gram import SignedGram
    from afterkernel.maxmargin.newton import newton_support

    gram = SignedGram(np.asarray(K, np.float32), np.where(y > 0, 1.0, -1.0))
    info = {}
    a, g, _ = newton_support(gram, gram.uniform_margins(), tol, 60, info, start=16)
    assert a is not None, info
    return float(g.min()) / np.sqrt(float(a @ g)), a, info


def test_newton_float32_factor_is_refined_to_float64_accuracy():
    # A float32 K is factored in float32; iterative refinement makes the
    # result that of the float64 problem on the same (rounded) entries.
    K, y, _, _ = make_problem("rbf", 80, 3)
    K32 = K.astype(np.float32)
    margin, a, info = newton_float32(K32, y)
    assert info["newton_factor"] == "float32"
    assert margin == pytest.approx(reference(K32.astype(np.float64), y)[0], rel=1e-8)
    assert np.all(a >= 0)


@pytest.mark.parametrize("tol", [1e-4, 1e-7])
def test_newton_float32_certifies_its_gap(tol):
    # Refined only as far as the gap needs: whatever it stops at is certified.
    K, y, _, _ = make_problem("rbf", 120, 6)
    K32 = K.astype(np.float32)
    gamma = reference(K32.astype(np.float64), y)[0]
    r = mm.solve(K32, y, tol=tol)
    assert r.status == "optimal" and r.info["newton_factor"] == "float32"
    assert r.gap <= tol and r.margin <= gamma * (1 + 1e-12) and r.margin >= gamma * (1 - tol)
    assert r.upper_bound >= gamma * (1 - 1e-12)


def test_newton_float32_turns_float64_when_refinement_fails(monkeypatch):
    from afterkernel.maxmargin import newton

    monkeypatch.setattr(newton, "_REFINE_STEPS", 0)  # no step allowed: here the float32 a_F misses the gap 1e-10
    K, y, _, _ = make_problem("rbf", 80, 3)
    K32 = K.astype(np.float32)
    margin, _, info = newton_float32(K32, y)
    assert info["newton_factor"] == "float64"
    assert margin == pytest.approx(reference(K32.astype(np.float64), y)[0], rel=1e-8)


def test_newton_float32_with_duplicate_points():
    # Duplicates put pivots of G_FF below float32's reach: the factor turns
    # float64, where the dependent copies are found (only there) and dropped.
    K, y, _, _ = make_problem("rbf", 80, 5)
    twice = np.argsort(-mm.solve(K, y, tol=1e-10).coef)[:3]  # three support vectors
    idx = np.concatenate([np.arange(80), twice])
    K, y = K[np.ix_(idx, idx)].astype(np.float32), y[idx]
    r = mm.solve(K, y, newton=True, tol=1e-10)
    assert r.status == "optimal" and sum(r.info["newton_dependent"]) >= 3
    assert r.margin == pytest.approx(reference(K.astype(np.float64), y)[0], rel=1e-8)


def test_newton_certifies_nonseparable_through_its_fallback():
    K, y, _ = noisy_problem()
    assert newton_only(K, y) is None
    r = mm.solve(K, y, newton=True)
    assert r.status == "nonseparable" and not r.separable


def test_decision_function_reads_blocks_of_rows(monkeypatch):
    from afterkernel.maxmargin import classifier

    K, y, Kt, _ = make_problem("rbf", 60, 2)
    coef = mm.solve(K, y).coef
    whole = Kt @ (coef * np.where(y > 0, 1.0, -1.0))
    monkeypatch.setattr(classifier, "_ROWS", 7)
    np.testing.assert_allclose(mm.decision_function(Kt, y, coef), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nonsep_coef", ["loss", "dual"])
def test_nonseparable_is_detected_by_exact(nonsep_coef):
    K, y, _ = noisy_problem()
    r = mm.solve(K, y, nonsep_coef=nonsep_coef)
    assert not r.separable and r.converged and r.status == "nonseparable"
    assert np.isnan(r.margin) and np.isnan(r.gap)
    assert r.upper_bound <= 1e-6 * np.sqrt(np.diag(K).max())
    assert np.all(np.isfinite(r.coef))
    err = mm.error_rate(mm.decision_function(K, y, r.coef), y)
    assert 0.0 < err < 1.0
    if nonsep_coef == "loss":
        assert r.info["coef_from"].startswith("loss minimiser")
        assert err < 0.3  # a sensible classifier despite the noise
    else:
        assert np.all(r.coef >= 0)


def test_opposite_labels_on_one_point_are_not_separable():
    K, y, Kt, yt = make_problem("rbf", 40, 8)
    K = np.pad(K, ((0, 1), (0, 1)))
    K[-1, :-1] = K[:-1, -1] = K[0, :-1]  # a copy of point 0 ...
    K[-1, -1] = K[0, 0]
    y = np.append(y, 1 - y[0])  # ... with the other label
    r = mm.solve(K, y)
    assert r.status == "nonseparable" and not r.separable


def test_nonseparable_alg1_stops_at_the_cap():
    K, y, X = noisy_problem()
    for r in (mm.solve(K, y, solver="alg1", max_iter=300), mm.solve_primal_alg1(X, y, max_iter=300)):
        assert not r.separable and np.isnan(r.margin)
        # stopped either by the cap or because the dual bound reached ~0
        assert (r.status, r.converged, r.iterations) == ("max_iter", False, 300) or (
            r.status == "nonseparable" and r.converged and r.iterations < 300
        )
        assert np.all(np.isfinite(r.coef))
        assert mm.error_rate(mm.decision_function(K, y, r.coef), y) < 0.3


def test_iteration_cap_of_the_exact_solver():
    K, y, _, _ = make_problem("rbf", 150, 3)
    r = mm.solve(K, y, max_iter=2, warm_start=False, working_set=8)
    assert r.iterations <= 2 and not r.converged and r.status == "max_iter"
    assert np.all(np.isfinite(r.coef))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_kernel_raises(bad):
    K, y, _, _ = make_problem("linear", 20, 0)
    K = K.copy()
    K[3, 5] = K[5, 3] = bad
    for solver in ("exact", "alg1"):
        with pytest.raises(ValueError, match="non-finite"):
            mm.solve(K, y, solver=solver)
    with pytest.raises(ValueError, match="non-finite"):
        mm.solve_primal_alg1(np.full((20, 3), bad), y)


def test_bad_arguments_raise():
    K, y, _, _ = make_problem("linear", 20, 0)
    with pytest.raises(ValueError, match="unknown solver"):
        mm.solve(K, y, solver="smo")
    with pytest.raises(ValueError, match="labels"):
        mm.solve(K, np.arange(20))
    with pytest.raises(ValueError, match="square"):
        mm.solve(K[:, :10], y)
    with pytest.raises(ValueError, match="labels"):
        mm.solve(K, y[:10])


# ---------------------------------------------------------------------------
# labels, determinism, helpers


def test_label_conventions_agree():
    K, y, _, _ = make_problem("rbf", 60, 2)
    r01 = mm.solve(K, y)
    rpm = mm.solve(K, 2 * y.astype(int) - 1)
    np.testing.assert_array_equal(r01.coef, rpm.coef)


@pytest.mark.parametrize("solver", ["exact", "alg1"])
def test_deterministic(solver):
    K, y, _, _ = make_problem("rbf", 150, 3)
    a = mm.solve(K, y, solver=solver)
    b = mm.solve(K.copy(), y.copy(), solver=solver)
    np.testing.assert_array_equal(a.coef, b.coef)
    assert (a.margin, a.upper_bound, a.iterations) == (b.margin, b.upper_bound, b.iterations)


def test_decision_function_and_error_rate():
    Kt = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    f = mm.decision_function(Kt, np.array([1, 0]), np.array([2.0, 1.0]))
    np.testing.assert_allclose(f, [2.0, -2.0, 1.0])
    assert mm.error_rate(f, np.array([1, 0, 0])) == pytest.approx(1 / 3)
    assert mm.error_rate(f, np.array([1, -1, 1])) == 0.0
    assert mm.error_rate(np.array([0.0]), np.array([1])) == 1.0  # 0 predicts class 0


# ---------------------------------------------------------------------------
# the SVM job: Gram file in, SVM file out


def test_svm_job_writes_the_svm_file(tmp_path):
    import h5py

    from afterkernel.maxmargin.job import write_svm

    K, y, Kt, yt = make_problem("rbf", 60, 2)
    gram = tmp_path / "seed0.gram.h5"
    with h5py.File(gram, "w") as f:
        f["y_train"], f["y_test"] = y, yt
        for snapshot, diverged in (("e1", False), ("e2", True)):
            f.create_group(snapshot).attrs["diverged"] = diverged
            f[f"{snapshot}/after/train"], f[f"{snapshot}/after/test_train"] = K, Kt
    settings = {"solver": "exact", "tolerance": None, "max_iterations": None}
    attrs = write_svm(gram, tmp_path / "e1.after.h5", "e1", "after", settings)
    r = mm.solve(K, y)
    with h5py.File(tmp_path / "e1.after.h5", "r") as f:
        assert f.attrs["status"] == "optimal" and not f.attrs["diverged"]
        assert (f.attrs["margin"], f.attrs["n_support"]) == (r.margin, r.n_support)
        np.testing.assert_array_equal(f["decision_test"][...], mm.decision_function(Kt, y, r.coef))
        assert f.attrs["test_error"] == attrs["test_error"] == mm.error_rate(f["decision_test"][...], yt)
    write_svm(gram, tmp_path / "e2.after.h5", "e2", "after", settings)
    with h5py.File(tmp_path / "e2.after.h5", "r") as f:
        assert f.attrs["status"] == "diverged" and np.isnan(f.attrs["test_error"])
        assert np.isnan(f["decision_test"][...]).all()
    with pytest.raises(ValueError, match="no e3/after"):
        write_svm(gram, tmp_path / "e3.after.h5", "e3", "after", settings)


# ---------------------------------------------------------------------------
# the classifier of a kernel that is not separable: the minimiser of Algorithm 1's loss


def _lse_minimiser_bfgs(Z):
    """The minimiser of log sum exp(-Z w) by scipy's BFGS (brute force)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp, softmax

    def f(w):
        m = Z @ w
        return logsumexp(-m), -(Z.T @ softmax(-m))

    return minimize(f, np.zeros(Z.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-11}).x


def test_loss_minimiser_matches_bfgs():
    from afterkernel.maxmargin.nonsep import loss_minimiser

    _, y, X = noisy_problem()
    Z = X * np.where(y > 0, 1.0, -1.0)[:, None]
    w, p, steps, ok = loss_minimiser(Z, grad_tol=1e-12)
    assert ok and steps < 30
    np.testing.assert_allclose(w, _lse_minimiser_bfgs(Z), rtol=1e-6, atol=1e-8)
    assert np.linalg.norm(Z.T @ p) <= 1e-12 and p.min() > 0 and p.sum() == pytest.approx(1.0)


def test_loss_minimiser_stops_on_separable_data():
    from afterkernel.maxmargin.nonsep import loss_minimiser

    X, y = clusters(80, 3, seed=1, sep=3.0)
    w, _, steps, ok = loss_minimiser(X * np.where(y > 0, 1.0, -1.0)[:, None], grad_tol=1e-12)
    assert not ok and steps < 100
    assert np.all((X @ w) * np.where(y > 0, 1.0, -1.0) > 0)  # w separates: L has no minimiser


def test_nonseparable_classifier_is_the_loss_minimiser():
    K, y, X = noisy_problem()
    r = mm.solve(K, y)
    assert r.status == "nonseparable" and r.info["coef_from"].startswith("loss minimiser")
    s = np.where(y > 0, 1.0, -1.0)
    w = _lse_minimiser_bfgs(X * s[:, None])
    # The same classifier (scaled to ||w|| = 1): its decision values on the
    # training points are X w, up to the stationarity tolerance (1e-8 of
    # the largest feature norm).
    np.testing.assert_allclose(mm.decision_function(K, y, r.coef), X @ w / np.linalg.norm(w), atol=1e-7)
    # and the certificate is its softmax weights' dual bound
    assert r.upper_bound <= 1e-6 * np.sqrt(np.diag(K).max())


@pytest.mark.parametrize("block", [1, 7, 128])
def test_low_rank_features_is_a_pivoted_cholesky_factor(block):
    from afterkernel.maxmargin.gram import low_rank_features

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 40))
    X[7] = X[3]  # a duplicate point: dependent, never a pivot twice
    K = X @ X.T
    Phi, piv = low_rank_features(K, max_rank=64, block=block)
    assert Phi.shape == (300, 40) and len(piv) == 40 and len(set(piv.tolist())) == 40
    np.testing.assert_allclose(Phi @ Phi.T, K, atol=1e-9 * K.max())
    # the factor reproduces K's pivot columns and is triangular on the pivot rows
    np.testing.assert_allclose(Phi @ Phi[piv].T, K[:, piv], atol=1e-12 * K.max())
    np.testing.assert_allclose(np.triu(Phi[piv], 1), 0.0, atol=1e-12 * np.sqrt(K.max()))
    assert low_rank_features(K, max_rank=39, block=block) is None


def test_nonsep_tolerance_follows_the_kernel_precision():
    assert mm.nonsep_tolerance(np.float64) == 1e-6 and mm.nonsep_tolerance(np.float32) == 2e-5
    assert mm.nonsep_tolerance(np.float32, 1e-7) == 1e-7
    # A float32 kernel of rank 20 < n, not separable: the loss minimiser's
    # dense softmax weights have a dual value on K at K's rounding, above
    # the float64 threshold and below the float32 one.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 20))
    y = (X[:, 0] + 0.5 * rng.normal(size=1000) > 0).astype(np.uint8)
    K = (X @ X.T).astype(np.float32)
    scale = np.sqrt(float(np.diag(K).max()))
    r = mm.solve(K, y)
    assert r.status == "nonseparable" and r.info["loss_certificate"]
    assert 1e-6 * scale < r.upper_bound <= 2e-5 * scale
    # At the float64 threshold the working set certifies, to that threshold,
    # and the classifier (the loss minimiser, whatever the threshold) is the same.
    r64 = mm.solve(K, y, nonsep_tol=1e-6)
    assert r64.status == "nonseparable" and not r64.info["loss_certificate"]
    assert r64.upper_bound <= 1e-6 * scale
    np.testing.assert_allclose(r64.coef, r.coef)

