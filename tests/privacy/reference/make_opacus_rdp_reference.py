#!/usr/bin/env python3
"""Writes opacus_rdp.json: what Opacus's RDP accountant says for a grid of cases.

dpnode's RDP accountant (node/privacy/rdp.cc) is tested against these figures
(tests/privacy/rdp_test.cc). Opacus is not installable here (it needs torch),
so this script loads only its accountant modules from a source checkout, with
a stub for the one torch-dependent import (`opacus.optimizers.DPOptimizer`,
used by IAccountant for type hints only). No Opacus code is copied: the
numbers come from running Opacus's own RDPAccountant.get_privacy_spent and
opacus.accountants.analysis.rdp.compute_rdp. Per-order RDP values also get an
independent high-precision figure (mpmath quadrature), because Opacus's
double-precision series loses digits when the RDP itself is ~1e-11.

Usage:
    python3 make_opacus_rdp_reference.py /path/to/opacus-checkout \
        [--commit HASH] [--out opacus_rdp.json]

The checkout is the directory that contains the `opacus/` package. Its commit
is read with `git rev-parse HEAD` when it is a git work tree; pass --commit
when it is an exported tree (e.g. from `git archive`).
"""

import argparse
import importlib
import json
import math
import os
import platform
import subprocess
import sys
import types
import warnings


def load_opacus_accountants(checkout):
    """Imports opacus.accountants.rdp without running opacus/__init__.py."""
    root = os.path.join(os.path.abspath(checkout), "opacus")
    if not os.path.isfile(os.path.join(root, "accountants", "analysis", "rdp.py")):
        sys.exit(f"{checkout} does not look like an Opacus checkout")

    def stub_package(name, path):
        module = types.ModuleType(name)
        module.__path__ = [path]
        sys.modules[name] = module
        return module

    stub_package("opacus", root)
    stub_package("opacus.accountants", os.path.join(root, "accountants"))
    optimizers = types.ModuleType("opacus.optimizers")
    optimizers.DPOptimizer = object  # only referenced in annotations
    sys.modules["opacus.optimizers"] = optimizers

    rdp_accountant = importlib.import_module("opacus.accountants.rdp")
    analysis = importlib.import_module("opacus.accountants.analysis.rdp")
    return rdp_accountant.RDPAccountant, analysis


def opacus_commit(checkout, override):
    if override:
        return override
    try:
        return subprocess.run(["git", "-C", checkout, "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        sys.exit("cannot read the checkout's commit; pass --commit")


def epsilon_cases():
    """(name, history [(q, sigma, steps)], delta, orders or None) tuples."""
    cases = []
    qs = [1e-4, 1e-3, 0.01, 0.04, 0.1, 0.3, 0.6, 1.0]
    sigmas = [0.3, 0.5, 0.8, 1.0, 1.5, 2.5, 5.0, 10.0, 20.0]
    steps = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000]
    deltas = [1e-3, 1e-5, 1e-6, 1e-9]
    # Every (q, sigma) pair once, with T and delta cycling so that every T and
    # every delta meets many different (q, sigma).
    n = 0
    for q in qs:
        for sigma in sigmas:
            t = steps[n % len(steps)]
            delta = deltas[(n // len(steps) + n) % len(deltas)]
            cases.append((f"grid_q{q:g}_s{sigma:g}_T{t}_d{delta:g}", [(q, sigma, t)], delta, None))
            n += 1
    # T and delta sweeps at a typical DP-SGD setting.
    for t in steps:
        cases.append((f"sweepT_q0.01_s1_T{t}", [(0.01, 1.0, t)], 1e-5, None))
    for delta in deltas:
        cases.append((f"sweepdelta_q0.01_s1_T10000_d{delta:g}", [(0.01, 1.0, 10_000)], delta,
                      None))
    # Opacus's own unit test setting (opacus/tests/accountants_test.py).
    cases.append(("opacus_unit_test", [(0.04, 1.5, int(90 / 0.04))], 1e-5, None))
    # Heterogeneous compositions: RDP is summed per order before converting.
    cases += [
        ("compose_2_schedules", [(0.01, 1.0, 5000), (0.02, 1.2, 3000)], 1e-5, None),
        ("compose_3_blocks", [(0.001, 0.8, 100_000), (0.01, 1.5, 2000), (0.1, 4.0, 50)], 1e-6,
         None),
        ("compose_repeated_setting", [(0.05, 1.1, 100), (0.01, 2.0, 100), (0.05, 1.1, 100)], 1e-5,
         None),
        ("compose_with_full_batch", [(1.0, 10.0, 20), (0.004, 0.9, 25_000)], 1e-9, None),
        ("compose_tiny_q", [(1e-4, 0.5, 1_000_000), (1e-3, 0.6, 10_000)], 1e-5, None),
        ("compose_low_noise", [(0.3, 0.6, 10), (0.1, 0.7, 30), (0.6, 2.0, 5)], 1e-3, None),
        ("compose_high_noise", [(0.5, 20.0, 1000), (0.2, 10.0, 100_000)], 1e-6, None),
        ("compose_many_steps", [(0.02, 1.3, 400_000), (0.02, 1.0, 600_000)], 1e-5, None),
    ]
    # User-chosen orders (the set TensorFlow Privacy's tests use) instead of
    # Opacus's defaults, including large and fractional orders.
    tf_orders = [1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 12.0, 14.0,
                 16.0, 20.0, 24.0, 28.0, 32.0, 64.0, 256.0]
    cases += [
        ("custom_orders_compose", [(1e-4, 0.4, 40_000), (0.1, 2.0, 100)], 1e-5, tf_orders),
        ("custom_orders_single", [(0.01, 3.0, 300)], 1e-9, tf_orders),
        ("custom_orders_fractional", [(0.02, 0.9, 1000)], 1e-5, [1.01, 1.5, 2.5, 4.5, 9.5, 20.5,
                                                                 40.5, 80.5, 256.1]),
    ]
    return cases


def rdp_cases():
    """(q, sigma, order) for single-step RDP values at chosen orders."""
    cases = []
    # Mostly the parameters TensorFlow Privacy checks against numerical
    # integration (rdp_accountant_test.py), plus everyday DP-SGD settings.
    for q, sigma, order in [(1e-7, 0.1, 1.01), (1e-6, 0.1, 256.0), (1e-5, 0.1, 256.1),
                            (1e-6, 1.0, 27.0), (1e-4, 1.0, 1.5), (1e-3, 1.0, 2.0),
                            (0.01, 10.0, 20.0), (0.1, 100.0, 20.5), (0.99, 0.1, 256.0),
                            (0.999, 100.0, 256.1)]:
        cases.append((q, sigma, order))
    for q, sigma in [(0.01, 2.5), (0.04, 1.5), (0.001, 0.6), (0.3, 0.8), (0.6, 1.1),
                     (1e-4, 20.0), (1.0, 1.5)]:
        for order in [1.1, 1.5, 2.0, 2.5, 3.7, 5.0, 10.9, 20.5, 32.0, 63.0, 256.0, 256.1]:
            cases.append((q, sigma, order))
    return cases


def rdp_by_quadrature(q, sigma, alpha):
    """Per-step RDP from a 40-digit numerical integral of A_alpha (mpmath).

    Independent of the series Opacus and dpnode evaluate: A_alpha =
    E_{z~N(0, sigma^2)}[((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha]. We
    integrate A_alpha - 1 (expm1/log1p) so that tiny RDP keeps its digits, and
    split the line at half-integers and at multiples of sigma: the integrand is
    a mixture of N(i, sigma^2) bumps, which tanh-sinh then resolves.
    Where Opacus's double-precision series loses digits (RDP ~ 1e-11), this
    shows which of two disagreeing figures is right.
    """
    from mpmath import mp, mpf

    mp.dps = 40
    q, s, a = mpf(q), mpf(sigma), mpf(alpha)
    if q == 1:
        return float(a / (2 * s * s))
    norm = 1 / (s * mp.sqrt(2 * mp.pi))

    def integrand(z):
        ratio_minus_1 = q * mp.expm1((2 * z - 1) / (2 * s * s))
        return norm * mp.exp(-z * z / (2 * s * s)) * mp.expm1(a * mp.log1p(ratio_minus_1))

    points = {k + 0.5 for k in range(-1, int(math.ceil(alpha)) + 2)}
    for m in range(1, 13):
        points.update((-m * sigma, alpha + m * sigma))
    points = [-mp.inf] + [mpf(p) for p in sorted(points)] + [mp.inf]
    return float(mp.log1p(mp.quad(integrand, points)) / (a - 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", help="directory containing the opacus/ package")
    parser.add_argument("--commit", help="Opacus commit of an exported (non-git) tree")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__),
                                                      "opacus_rdp.json"))
    args = parser.parse_args()

    import mpmath
    import numpy
    import scipy

    rdp_accountant_cls, analysis = load_opacus_accountants(args.checkout)

    out = {
        "description": "Opacus RDPAccountant reference values for dpnode's RDP accountant; "
                       "generated by make_opacus_rdp_reference.py, see README.md",
        "opacus_commit": opacus_commit(args.checkout, args.commit),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "mpmath": mpmath.__version__,
        "default_orders": [float(a) for a in rdp_accountant_cls.DEFAULT_ALPHAS],
        "epsilon_cases": [],
        "rdp_cases": [],
    }

    for name, history, delta, orders in epsilon_cases():
        accountant = rdp_accountant_cls()
        # The state RDPAccountant.step() builds: (noise_multiplier, sample_rate, steps).
        accountant.history = [(sigma, q, t) for q, sigma, t in history]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            eps, order = accountant.get_privacy_spent(delta=delta, alphas=orders)
        if not math.isfinite(eps):
            sys.exit(f"{name}: Opacus gave a non-finite epsilon {eps}; pick another case")
        out["epsilon_cases"].append({
            "name": name,
            "history": [{"sample_rate": q, "noise_multiplier": sigma, "steps": t}
                        for q, sigma, t in history],
            "delta": delta,
            "orders": orders,  # null: Opacus's DEFAULT_ALPHAS
            "epsilon": float(eps),
            "order": float(order),
            "order_at_edge": any("Optimal order" in str(w.message) for w in caught),
        })

    for q, sigma, order in rdp_cases():
        rdp = analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=float(order))
        if not math.isfinite(rdp):
            sys.exit(f"q={q} sigma={sigma} order={order}: non-finite RDP {rdp}")
        out["rdp_cases"].append({"sample_rate": q, "noise_multiplier": sigma, "order": order,
                                 "rdp": float(rdp),
                                 "rdp_mpmath": rdp_by_quadrature(q, sigma, order)})

    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {len(out['epsilon_cases'])} epsilon cases and {len(out['rdp_cases'])} rdp "
          f"cases to {args.out}")


if __name__ == "__main__":
    main()
