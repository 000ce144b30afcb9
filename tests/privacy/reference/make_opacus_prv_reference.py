#!/usr/bin/env python3
"""Writes opacus_prv.json: Opacus's PRVAccountant figures for prv_test.cc.

Usage (Debian python3-numpy and python3-scipy; no torch needed):
  /usr/bin/python3 make_opacus_prv_reference.py /path/to/opacus-checkout \
      [--commit SHA] [--out opacus_prv.json]

The checkout is a plain copy of github.com/pytorch/opacus (a git work tree or
an exported tree). Opacus's package __init__ and accountant base class import
torch, so this script registers stand-in parent packages in sys.modules and
then imports the real opacus/accountants/{prv,rdp}.py and
opacus/accountants/analysis/** files from the checkout unchanged. Nothing of
Opacus is copied into dpnode; only its numbers land in the JSON.

For every case it records what PRVAccountant.get_epsilon computes internally
(eps_lower, eps_estimate and eps_upper from DiscretePRV.compute_epsilon; the
accountant returns eps_upper), Opacus's RDP epsilon for the same history, and
the size of the discretisation grid.
"""
import argparse
import importlib
import json
import os
import subprocess
import sys
import time
import types

# (blocks [(q, sigma, steps), ...], delta, eps_error)
HOMOGENEOUS = [
    (1e-3, 0.5, 1000, 1e-5),
    (1e-3, 1.0, 100000, 1e-5),
    (1e-3, 2.0, 100000, 1e-8),
    (1e-3, 10.0, 1, 1e-3),
    (1e-3, 0.6, 10000, 1e-3),
    (2e-3, 1.0, 50000, 1e-6),
    (5e-3, 0.7, 100000, 1e-5),
    (0.01, 1.0, 100000, 1e-5),
    (0.01, 1.0, 1, 1e-5),
    (0.01, 0.5, 100, 1e-6),
    (0.01, 0.8, 10000, 1e-5),
    (0.01, 2.0, 10000, 1e-8),
    (0.01, 5.0, 100000, 1e-3),
    (0.01, 10.0, 1000, 1e-6),
    (0.02, 0.9, 30000, 1e-5),
    (0.04, 1.5, 2250, 1e-5),  # Opacus's own test_prv_accountant case
    (0.05, 0.5, 10, 1e-5),
    (0.05, 1.0, 1000, 1e-5),
    (0.05, 1.2, 10000, 1e-6),
    (0.05, 3.0, 100000, 1e-8),
    (0.05, 10.0, 10000, 1e-3),
    (0.1, 0.7, 100, 1e-5),
    (0.1, 1.0, 1, 1e-8),
    (0.1, 2.0, 1000, 1e-5),
    (0.1, 5.0, 100000, 1e-5),
    (0.2, 0.5, 1, 1e-3),
    (0.2, 1.0, 100, 1e-6),
    (0.2, 2.0, 10000, 1e-5),
    (0.2, 8.0, 10000, 1e-8),
    (0.3, 3.0, 1000, 1e-6),
    (0.5, 0.5, 1, 1e-5),
    (0.5, 1.0, 10, 1e-5),
    (0.5, 2.0, 100, 1e-8),
    (0.5, 5.0, 10000, 1e-5),
    (0.5, 10.0, 3000, 1e-3),
]
CASES = [([(q, s, t)], d, 0.01) for (q, s, t, d) in HOMOGENEOUS]
CASES += [
    ([(0.01, 1.0, 100000)], 1e-5, 0.1),
    ([(0.05, 1.0, 1000)], 1e-5, 0.1),
    ([(0.01, 1.0, 1000), (0.05, 2.0, 500)], 1e-5, 0.01),
    ([(0.02, 0.8, 2000), (0.02, 1.2, 3000), (0.1, 3.0, 100)], 1e-6, 0.01),
    ([(1e-3, 0.5, 5000), (0.5, 10.0, 10), (0.01, 1.0, 10000)], 1e-5, 0.01),
    ([(0.01, 1.0, 30000), (0.02, 1.2, 30000), (0.01, 0.8, 40000)], 1e-5, 0.01),
]


def load_opacus(root):
    """Imports Opacus's accountant modules from `root` without torch."""
    pkg_dir = os.path.join(root, "opacus")
    acc_dir = os.path.join(pkg_dir, "accountants")
    if not os.path.isfile(os.path.join(acc_dir, "prv.py")):
        sys.exit(f"{acc_dir}/prv.py not found: pass the Opacus checkout root")
    opacus = types.ModuleType("opacus")
    opacus.__path__ = [pkg_dir]
    accountants = types.ModuleType("opacus.accountants")
    accountants.__path__ = [acc_dir]
    # Stand-in for opacus/accountants/accountant.py, whose real base class
    # imports opacus.optimizers (torch). PRV/RDP only need `history`.
    base = types.ModuleType("opacus.accountants.accountant")

    class IAccountant:
        def __init__(self):
            self.history = []

    base.IAccountant = IAccountant
    sys.modules["opacus"] = opacus
    sys.modules["opacus.accountants"] = accountants
    sys.modules["opacus.accountants.accountant"] = base
    prv = importlib.import_module("opacus.accountants.prv")
    rdp = importlib.import_module("opacus.accountants.rdp")
    return prv.PRVAccountant, rdp.RDPAccountant


def commit_of(root):
    try:
        out = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("opacus_root")
    ap.add_argument("--commit", help="Opacus commit, if the tree is not a git work tree")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "opacus_prv.json"))
    args = ap.parse_args()
    commit = args.commit or commit_of(args.opacus_root)
    if not commit:
        sys.exit("cannot tell the Opacus commit: pass --commit")
    PRVAccountant, RDPAccountant = load_opacus(args.opacus_root)
    import numpy
    import scipy

    cases = []
    for blocks, delta, eps_error in CASES:
        # Opacus's history entries are (noise_multiplier, sample_rate, steps).
        history = [(s, q, int(t)) for (q, s, t) in blocks]
        acc = PRVAccountant()
        acc.history = list(history)
        delta_error = delta / 1000  # get_epsilon's default
        start = time.time()
        dprv = acc._get_dprv(eps_error=eps_error, delta_error=delta_error)
        lower, estimate, upper = dprv.compute_epsilon(delta, delta_error, eps_error)
        seconds = time.time() - start
        # Same call path as the public API, as a cross-check.
        assert acc.get_epsilon(delta, eps_error=eps_error) == upper
        rdp = RDPAccountant()
        rdp.history = list(history)
        rdp_eps = rdp.get_epsilon(delta)
        case = {
            "blocks": [{"sample_rate": q, "noise_multiplier": s, "steps": int(t)}
                       for (q, s, t) in blocks],
            "delta": delta,
            "eps_error": eps_error,
            "eps_lower": float(lower),
            "eps_estimate": float(estimate),
            "eps_upper": float(upper),
            "rdp_epsilon": float(rdp_eps),
            "grid_size": int(dprv.domain.size),
        }
        cases.append(case)
        print(f"{blocks} delta={delta} eps_error={eps_error}: "
              f"[{lower:.6f}, {estimate:.6f}, {upper:.6f}] rdp={rdp_eps:.6f} "
              f"grid={dprv.domain.size} {seconds:.2f}s", flush=True)

    doc = {
        "source": "github.com/pytorch/opacus opacus/accountants/prv.py PRVAccountant",
        "opacus_commit": commit,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "generator": "tests/privacy/reference/make_opacus_prv_reference.py",
        "cases": cases,
    }
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {args.out}")


if __name__ == "__main__":
    main()
