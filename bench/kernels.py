"""Recurrent kernels: rnr.RNN against torch.nn.RNN/LSTM/GRU in the same run, training step and inference.

For Elman (tanh, relu), LSTM and GRU layers over a grid from small (hidden 16/32/64, batch 1/16/64, 100 and 500
steps, 8 input features) to DeepBench's vanilla sizes (hidden 1760 = input, batch 16 and 64, 50 steps), it times
the training step (forward, a sum loss, backward) and inference (forward under no_grad) of rnr.RNN (impl="auto",
the same weights) and of torch.nn, the median of repeats, and prints: the sizes, rnr's implementation, both times,
torch / rnr (above 1: rnr is faster), rnr's GFLOP/s and its fraction of the machine's large-matrix-product rate,
measured at the start of the same run. Then a single-sequence streaming step (rnr.Stream against
torch.nn.RNNCell/LSTMCell/GRUCell), and the share of padded steps in M4 Hourly and tiny Shakespeare batches, drawn
at random and bucketed by length.

The parallel cells (``--only scan``): rnr.RNN(cell="mingru"/"minlstm") trained (forward, a sum loss, backward)
against torch.nn.LSTM and torch.nn.GRU of the same width in the same run, as training steps per second and their
ratio (above 1: the min cell trains faster); and rnr.core.scan.linear_scan against linear_scan_reference, its step
loop (forward, and forward plus backward under autograd).

FLOPs: a forward pass is 2 B T G H (I + H) (the input and hidden products of G gate blocks); a training step is
counted as 3 forward passes.

    python bench/kernels.py                      # the whole grid, both cores (about 10 minutes on 2 cores)
    python bench/kernels.py --quick              # small sizes, fewer repeats (about 1 minute)
    python bench/kernels.py --threads 1 --json out.json
    python bench/kernels.py --device cuda        # on a GPU (rnr uses cuDNN there, as torch.nn does)
    python bench/kernels.py --only scan --quick  # minGRU, minLSTM and the scan, small sizes (under a minute)
    python bench/kernels.py --only kernels --threads 1 --impl compiled --cells lstm --sizes 64x64x100,32x16x500
"""
import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch

from rnr.core.rnn import RNN
from rnr.core.scan import linear_scan, linear_scan_reference
from rnr.core.stream import Stream
from rnr.data.datasets import load_m4, load_tinyshakespeare
from rnr.data.sequences import SequenceData

CELLS = [("elman", "tanh"), ("elman", "relu"), ("lstm", "tanh"), ("gru", "tanh")]
GATES = {"elman": 1, "lstm": 4, "gru": 3}
PEERS = {"elman": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
STEP_PEERS = {"elman": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}


def sizes(quick: bool):
    """(hidden, batch, steps, input) of the grid."""
    small = [(h, b, t, 8) for h in (16, 32, 64) for b in (1, 16, 64) for t in (100, 500)]
    if quick:
        return [s for s in small if s[2] == 100 and s[1] != 64] + [(64, 64, 500, 8)]
    return small + [(1760, 16, 50, 1760), (1760, 64, 50, 1760)]


def parse_sizes(text: str):
    """"64x64x100,32x16x500" -> [(64, 64, 100, 8), (32, 16, 500, 8)]: (hidden, batch, steps, input)."""
    try:
        grid = [tuple(int(v) for v in item.split("x")) for item in text.split(",")]
    except ValueError:
        grid = []
    if not grid or any(len(size) != 3 for size in grid):
        raise argparse.ArgumentTypeError(f"--sizes takes HIDDENxBATCHxSTEPS[,...], got {text!r}")
    return [(*size, 8) for size in grid]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_time(f, repeats: int, device) -> float:
    f()  # warm up: compilation, allocator, caches
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        f()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(device, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a large float32 matrix product: the machine's practical peak."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    return 2 * n**3 / median_time(lambda: a @ b, repeats, device) / 1e9


def layer_pair(cell, phi, I, H, device, impl="auto"):
    torch.manual_seed(0)
    kw = dict(nonlinearity=phi) if cell == "elman" else {}
    theirs = PEERS[cell](I, H, batch_first=True, **kw).to(device)
    ours = RNN(I, H, cell=cell, nonlinearity=phi, impl=impl).to(device)
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


def time_layer(model, x, train: bool, repeats: int, device) -> float:
    params = list(model.parameters())

    def train_step():
        for p in params:
            p.grad = None
        out, _ = model(x)
        out.sum().backward()

    def infer():
        with torch.no_grad():
            model(x)

    return median_time(train_step if train else infer, repeats, device)


def kernel_rows(args, device, peak):
    rows = []
    for cell, phi in CELLS:
        if args.cells and (f"{cell}-{phi}" if cell == "elman" else cell) not in args.cells:
            continue
        for H, B, T, I in args.sizes or sizes(args.quick):
            ours, theirs = layer_pair(cell, phi, I, H, device, args.impl)
            x = torch.randn(B, T, I, device=device)
            repeats = args.repeats if H < 1000 else max(2, args.repeats // 2)
            flops = 2 * B * T * GATES[cell] * H * (I + H)
            for mode in ("train", "infer"):
                train = mode == "train"
                t_torch = time_layer(theirs, x, train, repeats, device)
                t_rnr = time_layer(ours, x, train, repeats, device)
                gflops = (3 if train else 1) * flops / t_rnr / 1e9
                rows.append(dict(cell=f"{cell}-{phi}" if cell == "elman" else cell, mode=mode, hidden=H, batch=B,
                                 steps=T, input=I, impl=ours._impl(x), rnr_ms=t_rnr * 1e3, torch_ms=t_torch * 1e3,
                                 speedup=t_torch / t_rnr, gflops=gflops, of_peak=gflops / peak))
                r = rows[-1]
                print(f"{r['cell']:11s} {mode:5s} {H:5d} {B:4d} {T:4d} {I:5d} {r['impl']:>8s} {r['rnr_ms']:10.2f} "
                      f"{r['torch_ms']:10.2f} {r['speedup']:7.2f} {gflops:8.2f} {r['of_peak']:7.1%}", flush=True)
    return rows


def stream_rows(args):
    """Microseconds per step for one sequence: rnr.Stream.step against torch.nn.*Cell under no_grad."""
    rows = []
    n = 2000 if args.quick else 20000
    for cell, _ in [c for c in CELLS if c[1] == "tanh"]:
        for H in (16, 32, 64):
            torch.manual_seed(0)
            I = 8
            peer = STEP_PEERS[cell](I, H)
            stream = Stream(RNN(I, H, cell=cell))
            x = np.random.default_rng(0).standard_normal(I).astype(np.float32)
            xt = torch.from_numpy(x)[None]
            state = torch.zeros(1, H)
            state = (state, state) if cell == "lstm" else state

            def ours():
                for _ in range(n):
                    stream.step(x)

            def theirs():
                with torch.no_grad():
                    s = state
                    for _ in range(n):
                        s = peer(xt, s)

            t_ours = median_time(ours, 3, torch.device("cpu")) / n
            t_theirs = median_time(theirs, 3, torch.device("cpu")) / n
            rows.append(dict(cell=cell, hidden=H, rnr_us=t_ours * 1e6, torch_us=t_theirs * 1e6,
                             speedup=t_theirs / t_ours))
            print(f"{cell:6s} {H:4d} {t_ours * 1e6:9.2f} {t_theirs * 1e6:9.2f} {t_theirs / t_ours:7.2f}", flush=True)
    return rows


def scan_sizes(quick: bool):
    """(hidden, batch, steps, input) of the parallel cells' grid."""
    if quick:
        return [(64, 32, 100, 8), (64, 32, 500, 8)]
    return [(h, 32, t, 8) for h in (64, 256, 1024) for t in (100, 500, 2000)]


def scan_rows(args, device):
    """Training steps per second of minGRU and minLSTM against torch.nn.LSTM and GRU of the same width; the scan
    against its step loop."""
    rows = []
    for H, B, T, I in scan_sizes(args.quick):
        torch.manual_seed(0)
        x = torch.randn(B, T, I, device=device)
        rate = {}  # training steps per second
        for name in ("lstm", "gru", "mingru", "minlstm"):
            model = (PEERS[name](I, H, batch_first=True) if name in PEERS else RNN(I, H, cell=name)).to(device)
            rate[name] = 1.0 / time_layer(model, x, True, args.repeats, device)
        for name in ("mingru", "minlstm"):
            rows.append(dict(cell=name, hidden=H, batch=B, steps=T, input=I, steps_per_s=rate[name],
                             lstm_steps_per_s=rate["lstm"], gru_steps_per_s=rate["gru"],
                             vs_lstm=rate[name] / rate["lstm"], vs_gru=rate[name] / rate["gru"]))
            r = rows[-1]
            print(f"{name:8s} {H:5d} {B:4d} {T:5d} {r['steps_per_s']:9.1f} {r['lstm_steps_per_s']:9.1f} "
                  f"{r['gru_steps_per_s']:9.1f} {r['vs_lstm']:7.2f} {r['vs_gru']:7.2f}", flush=True)
        if H > 64 or T > 500:  # the step loop's backward under autograd grows as T^2 B H: small sizes only
            continue
        a = torch.rand(B, T, H, device=device, requires_grad=True)
        b = torch.randn(B, T, H, device=device, requires_grad=True)
        times = {}
        peers = (("scan", linear_scan), ("loop", linear_scan_reference), ("loop_bptt", LoopBPTT.apply))
        for name, f in peers:
            with torch.no_grad():
                times[name, "forward"] = median_time(lambda: f(a, b), args.repeats, device)
            times[name, "train"] = median_time(lambda: f(a, b).sum().backward(), args.repeats, device)
        for mode in ("forward", "train"):
            rows.append(dict(cell="linear_scan", mode=mode, hidden=H, batch=B, steps=T,
                             **{f"{name}_ms": times[name, mode] * 1e3 for name, _ in peers},
                             speedup=times["loop", mode] / times["scan", mode],
                             speedup_bptt=times["loop_bptt", mode] / times["scan", mode]))
            r = rows[-1]
            print(f"  linear_scan {mode:7s} (B, T, H) = ({B}, {T}, {H}): scan {r['scan_ms']:.2f} ms, step loop "
                  f"{r['loop_ms']:.2f} ms (loop/scan {r['speedup']:.2f}), step loop with a reversed-loop backward "
                  f"{r['loop_bptt_ms']:.2f} ms (/scan {r['speedup_bptt']:.2f})", flush=True)
    return rows


class LoopBPTT(torch.autograd.Function):
    """The fairer sequential peer of linear_scan (from zero): the step loop forward, and backward the reversed loop
    ``g_t = dL/dh_t + a_{t+1} g_{t+1}`` by hand, without autograd's bookkeeping at every step."""

    @staticmethod
    def forward(ctx, a, b):
        h = torch.empty_like(b)  # (B, T, H)
        h[:, 0] = b[:, 0]
        for t in range(1, a.shape[1]):
            torch.addcmul(b[:, t], a[:, t], h[:, t - 1], out=h[:, t])
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        g = torch.empty_like(grad_h)  # (B, T, H): dL/dh_t along every path
        g[:, -1] = grad_h[:, -1]
        for t in reversed(range(a.shape[1] - 1)):
            torch.addcmul(grad_h[:, t], a[:, t + 1], g[:, t + 1], out=g[:, t])  # dh_next carried back
        grad_a = torch.zeros_like(a)
        grad_a[:, 1:] = g[:, 1:] * h[:, :-1]  # dh_t/da_t = h_{t-1}; h_{-1} = 0
        return grad_a, g


def padded_share(lengths, batch_size: int, bucket: bool) -> float:
    """Share of a padded (B, max length) batch that is padding, over one epoch of shuffled batches."""
    X = [torch.zeros(n, 1) for n in lengths]
    data = SequenceData(X, torch.zeros(len(X), 1))
    real = padded = 0
    for batch in data.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(0), bucket=bucket):
        B, T = batch.x.shape[:2]
        n = int(batch.x_lengths.sum()) if batch.x_lengths is not None else B * T
        real, padded = real + n, padded + B * T - n
    return padded / (real + padded)


def padding_rows(batch_size: int = 32):
    rows = []
    m4 = load_m4("Hourly")
    shakespeare = load_tinyshakespeare()
    sets = {}
    if m4 is not None:
        sets["M4 Hourly series"] = [len(series) for series in m4[0]]
    if shakespeare is not None:  # one sequence per speech (blocks between blank lines), in characters
        sets["tiny Shakespeare speeches"] = [len(s) for s in shakespeare[0].split("\n\n") if s]
    for name, lengths in sets.items():
        row = dict(data=name, sequences=len(lengths), batch=batch_size, min=min(lengths), max=max(lengths),
                   random=padded_share(lengths, batch_size, False), bucketed=padded_share(lengths, batch_size, True))
        rows.append(row)
        print(f"{name:26s} {row['sequences']:7d} {row['min']:5d}-{row['max']:<6d} {row['random']:8.1%} "
              f"{row['bucketed']:9.1%}", flush=True)
    if not sets:
        print("(M4 and tiny Shakespeare not found under ../shared/data or RNR_DATA: skipped)")
    return rows


def machine(device) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, threads=torch.get_num_threads(), torch=torch.__version__, python=platform.python_version())
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cudnn"] = torch.backends.cudnn.version()
    return info


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes and fewer repeats")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement (median)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (rnr's loops follow it)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", choices=["kernels", "stream", "scan", "padding"], default=None)
    p.add_argument("--cells", nargs="*", default=None, help="e.g. lstm gru elman-tanh elman-relu (default: all)")
    p.add_argument("--json", default=None, help="also write every row to this file")
    p.add_argument("--impl", default="auto", help="rnr.RNN's impl in the kernel grid, e.g. compiled (default: auto)")
    p.add_argument("--sizes", default=None, type=parse_sizes,
                   help="the kernel grid as HIDDENxBATCHxSTEPS[,...], 8 inputs, e.g. 64x64x100,32x16x500")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = machine(device)
    peak = matmul_rate(device)
    info["matmul_gflops"] = peak
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    result = dict(machine=info)
    if args.only in (None, "kernels"):
        print(f"\n{'cell':11s} {'mode':5s} {'H':>5s} {'B':>4s} {'T':>4s} {'I':>5s} {'rnr impl':>8s} {'rnr ms':>10s} "
              f"{'torch ms':>10s} {'torch/rnr':>7s} {'GFLOP/s':>8s} {'of peak':>7s}")
        result["kernels"] = kernel_rows(args, device, peak)
    if args.only in (None, "stream") and device.type == "cpu":
        print(f"\nstreaming, one sequence, one step (8 inputs)\n{'cell':6s} {'H':>4s} {'rnr us':>9s} {'torch us':>9s} "
              f"{'torch/rnr':>7s}")
        result["stream"] = stream_rows(args)
    if args.only in (None, "scan"):
        print(f"\nminGRU and minLSTM against torch.nn, training steps per second (forward, sum, backward)\n"
              f"{'cell':8s} {'H':>5s} {'B':>4s} {'T':>5s} {'steps/s':>9s} {'LSTM':>9s} {'GRU':>9s} {'/LSTM':>7s} "
              f"{'/GRU':>7s}")
        result["scan"] = scan_rows(args, device)
    if args.only in (None, "padding"):
        print(f"\npadded share of batches of 32 (one epoch, shuffled)\n{'data':26s} {'seqs':>7s} {'lengths':>12s} "
              f"{'random':>8s} {'bucketed':>9s}")
        result["padding"] = padding_rows()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
