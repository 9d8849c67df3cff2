"""How fast is torch's fused LSTM kernel itself on this CPU, per thread count and precision?

    python -m benchmarks.lstm_kernel [--threads 1 2] [--batch 32 64 128] [--steps 250] [--hidden 256]
                                     [--embed 128] [--repeats 5] [--side-by-side N]

``make bench`` times whole training loops; this times the part of them that dominates (about 80% of a
bfloat16 training step of its model, ``torch.profiler`` on the 2-core AMD EPYC): one LSTM layer, one
direction (the call :func:`sentiment_lib.runtime.fused_rnn.run_cell` makes; oneDNN on a CPU), forward and backward on
a (T, B, E) input, in float32 and under bfloat16 autocast where the CPU runs it natively. Layouts: one
process with 1, 2, … threads, and N processes with one thread each at once (what two trainings in two
workers get, as notebooks 03–05 run them). Each row gives the useful GFLOP/s (``3 × 2 × 4H × (E + H)`` per
token, as ``make bench`` counts), the 2048² matrix-product roof in that precision on as many cores, the
kernel's share of it, and its speed-up over one thread. It answers how far the recurrence stays from what
the cores can do, and whether it scales across them.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import queue
import sys
import time

import pandas as pd
import torch

from benchmarks.bench import lstm_train_flops_per_token, matmul_gflops
from sentiment_lib.runtime.fused_rnn import cpu_has_bf16_rnn

COLUMNS = ["precision", "processes", "threads", "batch", "ms fwd+bwd", "GFLOP/s", "roof GFLOP/s", "% roof", "× one thread"]


def lstm_seconds(batch: int, steps: int, embed: int, hidden: int, bfloat16: bool, repeats: int = 5) -> float:
    """Best wall time (s) of one forward + backward of a one-direction ``nn.LSTM(embed, hidden)`` over a
    (steps, batch, embed) float32 input (gradients for the input and the weights), over ``repeats`` runs
    after two warm-up runs; under bfloat16 autocast when ``bfloat16``."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(embed, hidden)
    x = torch.randn(steps, batch, embed, requires_grad=True)

    def once() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            outputs, _ = lstm(x)
        outputs.float().sum().backward()

    for _ in range(2):
        once()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - start)
    return best


def _one_thread_worker(barrier, results, args: tuple) -> None:
    torch.set_num_threads(1)
    barrier.wait()  # all start together, so that their timed runs overlap
    results.put(lstm_seconds(*args))


def side_by_side_seconds(processes: int, batch: int, steps: int, embed: int, hidden: int, bfloat16: bool,
                         repeats: int = 5, timeout_s: float = 600.0) -> list[float]:
    """:func:`lstm_seconds` in ``processes`` fresh processes (*spawn*) at once, one thread each: what two
    trainings in two workers get from the cores. One time (s) per process."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_one_thread_worker, daemon=True,
                               args=(barrier, results, (batch, steps, embed, hidden, bfloat16, repeats)))
               for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        return [results.get(timeout=timeout_s) for _ in workers]
    except queue.Empty:
        raise RuntimeError(f"a side-by-side process gave no time within {timeout_s:.0f} s (exit codes "
                           f"{[w.exitcode for w in workers]}); run with --side-by-side 0 to skip them") from None
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.kill()


def measure(threads: list[int], batches: list[int], steps: int = 250, embed: int = 128, hidden: int = 256,
            repeats: int = 5, side_by_side: int = 0, roof_size: int = 2048, log=lambda line: None) -> pd.DataFrame:
    """One row (:data:`COLUMNS`) per precision × layout × batch size. Layouts: one process with each of
    ``threads`` threads, then (``side_by_side`` > 1) that many processes with one thread each, whose GFLOP/s
    is their sum and ms their mean. bfloat16 rows only where the CPU runs oneDNN's recurrent kernels in bf16
    (:func:`cpu_has_bf16_rnn`). ``roof GFLOP/s``: a ``roof_size``² matrix product in that precision with as
    many threads as the layout uses cores. torch's thread count is restored."""
    for name, values in (("threads", threads), ("batch", batches)):
        if not values or any(v < 1 for v in values):
            raise ValueError(f"--{name} takes positive integers, got {values!r}")
    for name, value in (("steps", steps), ("embed", embed), ("hidden", hidden), ("repeats", repeats)):
        if value < 1:
            raise ValueError(f"--{name} must be a positive integer, got {value!r}")
    if side_by_side < 0:
        raise ValueError(f"--side-by-side must be 0 (skip) or a number of processes, got {side_by_side!r}")
    precisions = [False, True] if cpu_has_bf16_rnn() else [False]
    flops = lstm_train_flops_per_token(embed, hidden, num_layers=1, bidirectional=False) * steps
    layouts = [(1, n) for n in sorted(set(threads))] + ([(side_by_side, 1)] if side_by_side > 1 else [])
    before = torch.get_num_threads()
    rows = []
    try:
        for processes, n in layouts:
            for bf16 in precisions:
                precision = "bfloat16" if bf16 else "float32"
                torch.set_num_threads(processes * n)  # the roof: every core the layout uses
                roof = matmul_gflops(roof_size, torch.bfloat16 if bf16 else torch.float32, repeats=3, budget_s=5.0)
                torch.set_num_threads(n)
                for batch in batches:
                    log(f"{precision}, {processes} process(es) × {n} thread(s), batch {batch} …")
                    if processes > 1:
                        seconds = side_by_side_seconds(processes, batch, steps, embed, hidden, bf16, repeats)
                    else:
                        seconds = [lstm_seconds(batch, steps, embed, hidden, bf16, repeats)]
                    rate = sum(flops * batch / s for s in seconds) / 1e9
                    rows.append({"precision": precision, "processes": processes, "threads": n, "batch": batch,
                                 "ms fwd+bwd": 1000 * sum(seconds) / len(seconds), "GFLOP/s": rate,
                                 "roof GFLOP/s": roof, "% roof": 100 * rate / roof})
    finally:
        torch.set_num_threads(before)
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    one = table[(table.processes == 1) & (table.threads == 1)].set_index(["precision", "batch"])["GFLOP/s"]
    table["× one thread"] = table["GFLOP/s"].to_numpy() / one.reindex(
        pd.MultiIndex.from_frame(table[["precision", "batch"]])).to_numpy()  # NaN without a 1-thread row
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lstm_kernel", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()],
                        help="thread counts to measure (default: 1 and torch's default)")
    parser.add_argument("--batch", type=int, nargs="+", default=[32, 64, 128], help="batch sizes (32 64 128)")
    parser.add_argument("--steps", type=int, default=250, help="time steps, about a bucketed batch's length (250)")
    parser.add_argument("--embed", type=int, default=128, help="input width (128)")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size (256, make bench's model)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row, the best kept (5)")
    parser.add_argument("--side-by-side", type=int, default=torch.get_num_threads(), metavar="N",
                        help="also N processes with one thread each, at once (default: torch's thread count; 0 skips)")
    args = parser.parse_args(argv)
    try:
        table = measure(args.threads, args.batch, args.steps, args.embed, args.hidden, args.repeats,
                        args.side_by_side, log=lambda line: print(line, file=sys.stderr, flush=True))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16 recurrence: {cpu_has_bf16_rnn()}; one LSTM layer, one direction, "
          f"T={args.steps}, E={args.embed}, H={args.hidden}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
