"""How closely rnr agrees with torch.nn.RNN/LSTM/GRU and with autograd's gradcheck; prints two tables.

For each cell and implementation: a 2-layer bidirectional model on a ragged float32 batch (torch runs it packed),
the same weights in both; the max-norm relative error ``max|ours - theirs| / max|theirs|`` of the outputs, the
final states and every parameter's gradient. Then ``torch.autograd.gradcheck`` (float64) of the hand-written
Elman BPTT for every built-in phi and a custom callable, on a ragged batch.

    python bench/agreement.py
"""
import platform

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnr.core.bptt import elman_bptt
from rnr.core.cells import resolve_phi
from rnr.core.rnn import RNN

PEERS = {"elman": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
CASES = [("elman", "tanh", "bptt"), ("elman", "relu", "bptt"), ("elman", "tanh", "loop"), ("elman", "tanh", "fused"),
         ("lstm", "tanh", "loop"), ("lstm", "tanh", "fused"), ("gru", "tanh", "loop"), ("gru", "tanh", "fused")]


def rel(a, b) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


def agreement(cell, phi, impl, B=6, T=12, I=5, H=8):
    torch.manual_seed(0)
    kw = dict(nonlinearity=phi) if cell == "elman" else {}
    theirs = PEERS[cell](I, H, num_layers=2, bidirectional=True, batch_first=True, **kw)
    ours = RNN(I, H, cell=cell, num_layers=2, bidirectional=True, impl=impl, **kw)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(B, T, I)
    lengths = torch.tensor([12, 9, 12, 3, 1, 7])
    out, h = ours(x, lengths=lengths)
    packed, h_t = theirs(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out_t, _ = pad_packed_sequence(packed, batch_first=True, total_length=T)
    states = (h if isinstance(h, tuple) else (h,), h_t if isinstance(h_t, tuple) else (h_t,))
    w = torch.randn_like(out)
    (out * w).sum().backward()
    (out_t * w).sum().backward()
    grads = max(rel(p.grad, q.grad) for p, q in zip(ours.parameters(), theirs.parameters()))
    return rel(out, out_t), max(rel(a, b) for a, b in zip(*states)), grads


def gradcheck(phi) -> bool:
    torch.manual_seed(0)
    B, T, I, H = 3, 5, 2, 3
    d = dict(dtype=torch.float64, requires_grad=True)
    args = (torch.randn(B, T, I, **d), torch.randn(B, H, **d), torch.randn(H, I, **d), torch.randn(H, H, **d) * 0.5,
            torch.randn(H, **d), torch.randn(H, **d))
    mask = torch.arange(T)[None] < torch.tensor([5, 3, 1])[:, None]
    return torch.autograd.gradcheck(lambda *a: elman_bptt(*a, resolve_phi(phi), mask)[0], args)


def main():
    print(f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; float32, "
          f"2 layers, bidirectional, ragged lengths [12, 9, 12, 3, 1, 7]")
    print(f"{'cell':<6} {'phi':<5} {'impl':<6} {'outputs':>9} {'states':>9} {'gradients':>10}")
    for cell, phi, impl in CASES:
        o, s, g = agreement(cell, phi, impl)
        print(f"{cell:<6} {phi:<5} {impl:<6} {o:>9.1e} {s:>9.1e} {g:>10.1e}")
    print("\ngradcheck (float64) of the hand-written Elman BPTT on a ragged batch:")
    for name, phi in [("tanh", "tanh"), ("relu", "relu"), ("sigmoid", "sigmoid"), ("identity", "identity"),
                      ("custom x*sigmoid(x)", lambda z: z * torch.sigmoid(z))]:
        print(f"  {name:<20} {'passed' if gradcheck(phi) else 'FAILED'}")


if __name__ == "__main__":
    main()
