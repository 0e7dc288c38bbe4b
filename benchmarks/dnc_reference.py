"""Compare :mod:`namcore.dnc` with the PyPI package ``dnc`` (1.1.0, PyTorch), an outside reference.

The package is not a dependency: install it into a folder of its own and point this
script at it (it needs only torch and numpy for the parts compared here)::

    pip download dnc==1.1.0 --no-deps -d /tmp/dnc-wheel
    python -m zipfile -e /tmp/dnc-wheel/dnc-1.1.0-py3-none-any.whl /tmp/dnc-pkg
    python benchmarks/dnc_reference.py --path /tmp/dnc-pkg

For random inputs in float64 it reports the largest absolute difference between the
two for usage, allocation (distinct usages, and all usages tied as at the first
step), the link matrix and precedence, and content weights; then it counts the NaNs
in the gradient of the content weights with respect to a memory that starts at zero
(every DNC's first step). With ``--train-steps N`` it also trains the package's own
``DNC`` (16 cells of width 8, 2 read heads, an LSTM of 32) on a small copy task for
``N`` Adam steps and counts the steps whose loss or gradients are not finite.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", required=True, help="folder holding the unpacked dnc package")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=0, help="also train its DNC this long")
    args = parser.parse_args()
    sys.path.insert(0, args.path)
    import torch
    from dnc.memory import Memory  # the outside reference

    from namcore import dnc

    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(args.seed)
    b, n, w, r = 4, 8, 5, 2
    mem = Memory(input_size=3, mem_size=n, cell_size=w, read_heads=r, independent_linears=False)
    t = torch.from_numpy
    rows: list[tuple[str, float]] = []

    usage, write_w = rng.uniform(size=(b, n)), rng.dirichlet(np.ones(n), size=b) * 0.9
    free, read_w = rng.uniform(size=(b, r)), rng.dirichlet(np.ones(n), size=(b, r)) * 0.9
    theirs = mem.get_usage_vector(t(usage), t(free), t(read_w), t(write_w)[:, None, :])
    ours = dnc.usage(usage, write_w, free, read_w)
    rows.append(("usage", float(np.abs(theirs.numpy() - ours).max())))

    for label, u in (("allocation, distinct usages", usage), ("allocation, tied", 0 * usage)):
        theirs, _ = mem.allocate(t(u), None)
        rows.append((label, float(np.abs(theirs[:, 0].numpy() - dnc.allocation(u)).max())))

    link = rng.uniform(size=(b, n, n)) / n
    link *= 1 - np.eye(n)
    precedence = rng.dirichlet(np.ones(n), size=b) * 0.8
    their_link = mem.get_link_matrix(t(link)[:, None], t(write_w)[:, None], t(precedence)[:, None])
    their_prec = mem.update_precedence(t(precedence)[:, None], t(write_w)[:, None])
    our_link, our_prec = dnc.link(link, precedence, write_w)
    rows.append(("link", float(np.abs(their_link[:, 0].numpy() - our_link).max())))
    rows.append(("precedence", float(np.abs(their_prec[:, 0].numpy() - our_prec).max())))

    memory, keys = rng.standard_normal((b, n, w)), rng.standard_normal((b, r, w))
    strengths = rng.uniform(1, 5, size=(b, r))
    theirs = mem.content_weightings(t(memory), t(keys), t(strengths))
    ours = dnc.content_address(memory[:, None], keys, strengths)
    rows.append(("content weights", float(np.abs(theirs.numpy() - ours).max())))

    zero = torch.zeros((b, n, w), requires_grad=True)
    mem.content_weightings(zero, t(keys), t(strengths)).sum().backward()
    their_nans = int(torch.isnan(zero.grad).sum())
    zero_ours = torch.zeros((b, 1, n, w), requires_grad=True)
    dnc.content_address(zero_ours, t(keys), t(strengths)).sum().backward()
    our_nans = int(torch.isnan(zero_ours.grad).sum())

    print("| quantity | max abs difference, dnc 1.1.0 vs namcore.dnc (float64) |")
    print("|---|---|")
    for label, value in rows:
        print(f"| {label} | {value:.1e} |")
    print(
        f"\nNaNs in d(content weights)/d(memory) at a zero memory ({zero.numel()} entries): "
        f"dnc 1.1.0 {their_nans}, namcore {our_nans}"
    )

    if args.train_steps:
        bad = copy_task_nan_steps(args.train_steps, args.seed)
        print(f"dnc 1.1.0's DNC on a copy task: {bad} of {args.train_steps} steps not finite")


def copy_task_nan_steps(steps: int, seed: int) -> int:
    """Train the package's ``DNC`` to copy 5 random 6-bit vectors; count non-finite steps."""
    import torch
    from dnc import DNC
    from tqdm import tqdm

    torch.manual_seed(seed)
    net = DNC(input_size=8, hidden_size=32, nr_cells=16, cell_size=8, read_heads=2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    bad = 0
    for _ in tqdm(range(steps), desc="dnc 1.1.0 copy task", unit="step"):
        x = torch.zeros(16, 12, 8)
        bits = torch.randint(0, 2, (16, 5, 6)).to(x.dtype)
        x[:, :5, :6] = bits
        x[:, 5, 7] = 1  # the end-of-input marker
        out, _ = net(x, (None, None, None), reset_experience=True)
        loss = ((out[:, 6:11, :6] - bits) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        grads = [p.grad for p in net.parameters() if p.grad is not None]
        if not torch.isfinite(loss) or not all(torch.isfinite(g).all() for g in grads):
            bad += 1
            continue
        opt.step()
    return bad


if __name__ == "__main__":
    main()
