"""Compiled CPU loops for the recurrence of Elman, LSTM and GRU layers (numba).

At the sizes people train on time series (hidden 16 to 128), a step of ``torch.nn.RNN`` on a CPU costs far more
in per-operation overhead than in arithmetic. These kernels run the whole time loop of one layer and direction in
compiled code instead, one batch row per task (rows are independent inside the recurrence, so both cores work
without meeting at every step), while everything that is one large matrix product stays in torch: the input
projection of all steps before the loop, and the weight gradients after it. Where scipy is installed, the ``*_tm``
kernels at the end run a block of rows per task instead, with each step's hidden product as one BLAS matrix product
(2 to 3 times faster from batch 16; ``rnr.core.fast`` picks them); the row kernels stay as the plain reference.

Each function below is the compiled form of a loop written plainly in ``rnr.core.rnn`` (``_run_loop``) and
``rnr.core.bptt`` (``elman_reference``); tests hold them together, forward and backward, ragged batches included.

Layouts (numpy, C-contiguous, float32 or float64):

- ``xw`` (B, T, G*H): input projections ``x_t W_x + b_ih`` (plus ``b_hh`` for Elman and LSTM, whose hidden bias
  simply adds), gates in PyTorch's order;
- ``wt`` (H, G*H): ``weight_hh`` transposed, so that one row of ``h`` times ``wt`` is the hidden projection;
- ``lengths`` (B,) int64: each row's real length; its state freezes after it and its outputs are zero.
"""
import importlib.util

import numpy as np

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this only keeps `import rnr` working without it
    numba = None

AVAILABLE = numba is not None
PHI_CODES = {"tanh": 0, "relu": 1, "sigmoid": 2, "identity": 3}

if AVAILABLE:
    # error_model="numpy": a float division never raises, so the loops over units vectorise
    _opts = dict(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
    _jit = numba.njit(**_opts)
    _inline = numba.njit(inline="always", **_opts)
    _pjit = numba.njit(parallel=True, **_opts)
    prange = numba.prange
else:  # pragma: no cover
    def _jit(f):
        return f

    _inline = _pjit = _jit
    prange = range

_TANH_CLAMP = np.float32(7.90531110763549805)  # float32 tanh rounds to +-1 beyond this


@_inline
def _tanh32(x):
    """tanh for float32 as a rational function (2.6e-7 max abs error, 2 ulp near 1) that vectorises, unlike
    libm's tanhf. The coefficients are Eigen's (generic_fast_tanh_float); NaN passes through."""
    x = min(max(x, -_TANH_CLAMP), _TANH_CLAMP)
    x2 = x * x
    p = np.float32(-2.76076847742355e-16)
    p = x2 * p + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = np.float32(1.19825839466702e-06)
    q = x2 * q + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


@_inline
def tanh_(v):
    """In place over a 1-D array; float64 keeps libm's exact tanh (the tests compare in float64)."""
    if v.itemsize == 8:
        for j in range(v.shape[0]):
            v[j] = np.tanh(v[j])
    else:
        for j in range(v.shape[0]):
            v[j] = _tanh32(v[j])


@_inline
def sigmoid_(v):
    if v.itemsize == 8:
        for j in range(v.shape[0]):
            v[j] = 1.0 / (1.0 + np.exp(-v[j]))
    else:
        half = np.float32(0.5)
        for j in range(v.shape[0]):
            v[j] = half + half * _tanh32(half * v[j])  # sigmoid(a) = (1 + tanh(a / 2)) / 2


@_inline
def _phi_(v, code):
    if code == 0:
        tanh_(v)
    elif code == 1:
        for j in range(v.shape[0]):
            v[j] = max(v[j], 0)
    elif code == 2:
        sigmoid_(v)


@_inline
def _dphi_times(out, g, s, code):
    """out = g * phi'(a), phi'(a) written in terms of s = phi(a)."""
    if code == 0:
        for j in range(out.shape[0]):
            out[j] = g[j] * (1 - s[j] * s[j])
    elif code == 1:
        for j in range(out.shape[0]):
            out[j] = g[j] if s[j] > 0 else 0
    elif code == 2:
        for j in range(out.shape[0]):
            out[j] = g[j] * s[j] * (1 - s[j])
    else:
        out[:] = g


@_inline
def _matvec_into(out, h, wt):
    """out += h @ wt for one row: h (H,), wt (H, N), out (N,)."""
    H, N = wt.shape
    for k in range(H):
        hk = h[k]
        for j in range(N):
            out[j] += hk * wt[k, j]


@(numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc"}) if AVAILABLE else _jit)
def _vecmat_into(out, d, wt):
    """out += d @ wt.T for one row, i.e. d @ weight_hh: d (N,), wt (H, N) = weight_hh.T, out (H,).

    Written as H dot products over contiguous rows of wt, which vectorise once the sums may be reordered
    (2 to 3 times faster here than accumulating rows of weight_hh)."""
    H, N = wt.shape
    for k in range(H):
        acc = out[k] * 0
        for j in range(N):
            acc += d[j] * wt[k, j]
        out[k] += acc


@_inline
def _lstm_update(a, c_prev, c_out, h_out):
    """Gates a (4H: i, f, g, o pre-activations) through their activations in place; c_out = f c_prev + i g,
    h_out = o tanh(c_out). c_out and h_out may be the state arrays themselves."""
    H = c_prev.shape[0]
    sigmoid_(a[: 2 * H])
    tanh_(a[2 * H: 3 * H])
    sigmoid_(a[3 * H:])
    for j in range(H):
        c_out[j] = a[H + j] * c_prev[j] + a[j] * a[2 * H + j]
    h_out[:] = c_out
    tanh_(h_out)
    for j in range(H):
        h_out[j] *= a[3 * H + j]


@_inline
def _gru_update(x, a, h_prev, rzn, h_out):
    """r, z, n into rzn (3H) from the input projection x and the hidden one a (both 3H, a with b_hh); h_out =
    (1 - z) n + z h_prev. rzn may be x itself, h_out may be h_prev."""
    H = h_prev.shape[0]
    for j in range(2 * H):
        rzn[j] = x[j] + a[j]
    sigmoid_(rzn[: 2 * H])
    for j in range(H):
        rzn[2 * H + j] = x[2 * H + j] + rzn[j] * a[2 * H + j]
    tanh_(rzn[2 * H:])
    for j in range(H):
        h_out[j] = (1 - rzn[H + j]) * rzn[2 * H + j] + rzn[H + j] * h_prev[j]


# --- Elman ----------------------------------------------------------------------------------------------------


@_pjit
def elman_forward(xw, h0, wt, lengths, code, out, h_n):
    """out[b, t] = s_t = phi(xw[b, t] + s_{t-1} wt) for t < lengths[b], zero after; h_n[b] = the last s."""
    B, T, H = xw.shape
    for b in prange(B):
        s = h0[b].copy()
        a = np.empty(H, xw.dtype)
        for t in range(lengths[b]):
            a[:] = xw[b, t]
            _matvec_into(a, s, wt)
            _phi_(a, code)
            s[:] = a
            out[b, t] = a
        out[b, lengths[b]:] = 0
        h_n[b] = s


@_pjit
def elman_backward(states, grad_out, grad_hn, wt, lengths, code, da, grad_h0):
    """dL/da_t into da (zero past each row's end) and dL/dh0 into grad_h0, from the saved outputs."""
    B, T, H = states.shape
    for b in prange(B):
        g = grad_hn[b].copy()  # dL/ds_t, carried backwards
        da[b, lengths[b]:] = 0
        for t in range(lengths[b] - 1, -1, -1):
            g += grad_out[b, t]
            _dphi_times(da[b, t], g, states[b, t], code)
            g[:] = 0
            _vecmat_into(g, da[b, t], wt)
        grad_h0[b] = g


# --- LSTM (gates i, f, g, o) ------------------------------------------------------------------------------------


@_pjit
def lstm_forward(xw, h0, c0, wt, lengths, out, h_n, c_n, gates, cells):
    """Gates after their activations into ``gates`` (B, T, 4H) and c_t into ``cells`` when they are not empty
    (training); h_t into out (zero past each row's end)."""
    B, T, G = xw.shape
    H = G // 4
    keep = gates.shape[0] > 0
    for b in prange(B):
        h = h0[b].copy()
        c = c0[b].copy()
        a = np.empty(G, xw.dtype)
        for t in range(lengths[b]):
            a[:] = xw[b, t]
            _matvec_into(a, h, wt)
            _lstm_update(a, c, c, h)
            if keep:
                gates[b, t] = a
                cells[b, t] = c
            out[b, t] = h
        out[b, lengths[b]:] = 0
        h_n[b] = h
        c_n[b] = c


@_pjit
def lstm_backward(gates, cells, c0, grad_out, grad_hn, grad_cn, wt, lengths, da, grad_h0, grad_c0):
    """dL/d(pre-activation gates) into da (B, T, 4H), and dL/dh0, dL/dc0."""
    B, T, G = gates.shape
    H = G // 4
    for b in prange(B):
        gh = grad_hn[b].copy()
        gc = grad_cn[b].copy()
        tc = np.empty(H, gates.dtype)
        da[b, lengths[b]:] = 0
        for t in range(lengths[b] - 1, -1, -1):
            row = da[b, t]
            a = gates[b, t]
            c_prev = cells[b, t - 1] if t > 0 else c0[b]
            tc[:] = cells[b, t]
            tanh_(tc)
            for j in range(H):
                i = a[j]
                f = a[H + j]
                g = a[2 * H + j]
                o = a[3 * H + j]
                dh = gh[j] + grad_out[b, t, j]
                dc = gc[j] + dh * o * (1 - tc[j] * tc[j])
                row[j] = dc * g * i * (1 - i)
                row[H + j] = dc * c_prev[j] * f * (1 - f)
                row[2 * H + j] = dc * i * (1 - g * g)
                row[3 * H + j] = dh * tc[j] * o * (1 - o)
                gc[j] = dc * f
            gh[:] = 0
            _vecmat_into(gh, row, wt)
        grad_h0[b] = gh
        grad_c0[b] = gc


# --- GRU (gates r, z, n; n = tanh(xn + r * (h W_hn + b_hn))) ----------------------------------------------------


@_pjit
def gru_forward(xw, h0, wt, b_hh, lengths, out, h_n, gates, hn):
    """xw holds x W_ih + b_ih only: the hidden bias of n sits inside r * (.). Training keeps r, z, n in
    ``gates`` (B, T, 3H) and h W_hn + b_hn in ``hn`` (B, T, H) when they are not empty."""
    B, T, G = xw.shape
    H = G // 3
    keep = gates.shape[0] > 0
    for b in prange(B):
        h = h0[b].copy()
        a = np.empty(G, xw.dtype)
        rzn = np.empty(G, xw.dtype)
        for t in range(lengths[b]):
            a[:] = b_hh
            _matvec_into(a, h, wt)
            _gru_update(xw[b, t], a, h, rzn, h)
            if keep:
                gates[b, t] = rzn
                hn[b, t] = a[2 * H:]
            out[b, t] = h
        out[b, lengths[b]:] = 0
        h_n[b] = h


@_pjit
def gru_backward(gates, hn, states, h0, grad_out, grad_hn, wt, lengths, dx, dh_lin, grad_h0):
    """dL/d(input projection) into dx (B, T, 3H), dL/d(hidden projection h W_hh + b_hh) into dh_lin, dL/dh0."""
    B, T, G = gates.shape
    H = G // 3
    for b in prange(B):
        gh = grad_hn[b].copy()
        dx[b, lengths[b]:] = 0
        dh_lin[b, lengths[b]:] = 0
        for t in range(lengths[b] - 1, -1, -1):
            rx = dx[b, t]
            rh = dh_lin[b, t]
            a = gates[b, t]
            h_prev = states[b, t - 1] if t > 0 else h0[b]
            for j in range(H):
                r = a[j]
                z = a[H + j]
                n = a[2 * H + j]
                dh = gh[j] + grad_out[b, t, j]
                dn = dh * (1 - z) * (1 - n * n)  # through tanh
                dz = dh * (h_prev[j] - n) * z * (1 - z)
                dr = dn * hn[b, t, j] * r * (1 - r)
                rx[j] = dr
                rx[H + j] = dz
                rx[2 * H + j] = dn
                rh[j] = dr
                rh[H + j] = dz
                rh[2 * H + j] = dn * r
                gh[j] = dh * z
            _vecmat_into(gh, rh, wt)
        grad_h0[b] = gh


# --- one step of one sequence (streaming inference) -------------------------------------------------------------


@_jit
def elman_step(x, h, w_ih_t, wt, bias, code, out):
    """out = phi(bias + x w_ih_t + h wt) for one sequence: x (I,), h (H,), w_ih_t (I, H), wt (H, H)."""
    out[:] = bias
    _matvec_into(out, x, w_ih_t)
    _matvec_into(out, h, wt)
    _phi_(out, code)


@_jit
def lstm_step(x, h, c, w_ih_t, wt, bias, out_h, out_c, a):
    """One LSTM step for one sequence; ``a`` (4H,) is scratch space."""
    a[:] = bias
    _matvec_into(a, x, w_ih_t)
    _matvec_into(a, h, wt)
    _lstm_update(a, c, out_c, out_h)


@_jit
def gru_step(x, h, w_ih_t, b_ih, wt, b_hh, out, a, rzn):
    """One GRU step for one sequence; ``a`` and ``rzn`` (3H,) are scratch space."""
    rzn[:] = b_ih
    _matvec_into(rzn, x, w_ih_t)
    a[:] = b_hh
    _matvec_into(a, h, wt)
    _gru_update(rzn, a, h, rzn, out)




# --- blocks of rows, time-major, the hidden product by BLAS -----------------------------------------------------
# The kernels above run one row per task, and each step of each row is a vector-matrix product written as a loop:
# about 40% of what a core can do, as every weight row is reloaded for every batch row and the accumulator goes
# through memory at every k (numba leaves no way to hold a tile of it in registers). The kernels below run a block
# of R rows per task and make each step's hidden product one (R, H) x (H, G*H) matrix product by BLAS (``np.dot``
# in numba calls scipy's ?gemm): 2.5 to 3 times the loop's rate from R = 4 rows on. Their arrays are time-major,
# (T, B, *), except the outputs and the gradients arriving at them, (B, T, H), so that one step of a block is one
# contiguous (R, *) slab: the backward product reads the gradients where they were just written, and rows do not
# sit a multiple of 4 KiB apart (in the batch-major layout they did, and missed in cache). A row whose sequence has
# ended still goes through the product (its result is dropped) but not through the update, so its state and
# gradients freeze there as in the row kernels; each block runs to its own longest row.
# Keep R * G*H * H at most BLAS_MAX_WORK: OpenBLAS multithreads larger products (measured: 3x slower per row on one
# core), and with numba's threads on the same cores that oversubscribes them.

BLAS = AVAILABLE and importlib.util.find_spec("scipy") is not None  # numba's np.dot needs scipy
BLAS_MAX_WORK = 2**18  # R * G*H * H of one block's product


@_inline
def _block(lengths, b0, R, out):
    """The longest length among rows b0 .. b0+R-1; zeroes each row's ``out`` (T, B, *) past its end."""
    Tb = 0
    for b in range(b0, b0 + R):
        Tb = max(Tb, lengths[b])
        for t in range(lengths[b], out.shape[0]):
            out[t, b] = 0
    return Tb


@_inline
def _block_bm(lengths, b0, R, out):
    """``_block`` for a batch-major ``out`` (B, T, *)."""
    Tb = 0
    for b in range(b0, b0 + R):
        Tb = max(Tb, lengths[b])
        out[b, lengths[b]:] = 0
    return Tb


@_pjit
def elman_forward_tm(xw, h0, wt, lengths, code, rows, out, h_n):
    """``elman_forward`` on blocks of ``rows`` rows: xw (T, B, H) time-major, out (B, T, H)."""
    T, B, H = xw.shape
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        s = h0[b0: b0 + R].copy()  # (R, H): s_{t-1} of each row
        A = np.empty((R, H), xw.dtype)
        for t in range(_block_bm(lengths, b0, R, out)):
            np.dot(s, wt, A)  # (R, H) x (H, H)
            for r in range(R):
                if t < lengths[b0 + r]:
                    a = out[b0 + r, t]
                    for j in range(H):
                        a[j] = xw[t, b0 + r, j] + A[r, j]
                    _phi_(a, code)
                    s[r] = a
        h_n[b0: b0 + R] = s


@_pjit
def elman_backward_tm(states, grad_out, grad_hn, w, lengths, code, rows, da, grad_h0):
    """``elman_backward`` on blocks of ``rows`` rows, time-major; ``w`` is weight_hh itself (H, H)."""
    T, B, H = da.shape
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        g = grad_hn[b0: b0 + R].copy()  # (R, H): dL/ds_t of each row, carried backwards
        P = np.empty((R, H), states.dtype)
        for t in range(_block(lengths, b0, R, da) - 1, -1, -1):
            for r in range(R):
                b = b0 + r
                if t < lengths[b]:
                    for j in range(H):
                        g[r, j] += grad_out[b, t, j]
                    _dphi_times(da[t, b], g[r], states[b, t], code)
            np.dot(da[t, b0: b0 + R], w, P)  # dL/ds_{t-1} = dL/da_t W_hh (rows past their end: zero)
            for r in range(R):
                if t < lengths[b0 + r]:
                    g[r] = P[r]
        grad_h0[b0: b0 + R] = g


@_pjit
def lstm_forward_tm(xw, h0, c0, wt, lengths, rows, out, h_n, c_n, cells):
    """``lstm_forward`` on blocks of ``rows`` rows, time-major: xw (T, B, 4H) is overwritten by the gates after
    their activations; c_t goes into ``cells`` (T, B, H) when it is not empty (training)."""
    T, B, G = xw.shape
    keep = cells.shape[0] > 0
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        h = h0[b0: b0 + R].copy()  # (R, H)
        c = c0[b0: b0 + R].copy()
        A = np.empty((R, G), xw.dtype)
        for t in range(_block_bm(lengths, b0, R, out)):
            np.dot(h, wt, A)  # (R, H) x (H, 4H)
            for r in range(R):
                b = b0 + r
                if t < lengths[b]:
                    a = xw[t, b]
                    for j in range(G):
                        a[j] += A[r, j]
                    _lstm_update(a, c[r], c[r], h[r])
                    if keep:
                        cells[t, b] = c[r]
                    out[b, t] = h[r]
        h_n[b0: b0 + R] = h
        c_n[b0: b0 + R] = c


@_pjit
def lstm_backward_tm(gates, cells, c0, grad_out, grad_hn, grad_cn, w, lengths, rows, da, grad_h0, grad_c0):
    """``lstm_backward`` on blocks of ``rows`` rows, time-major; ``w`` is weight_hh itself (4H, H)."""
    T, B, G = gates.shape
    H = G // 4
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        gh = grad_hn[b0: b0 + R].copy()  # (R, H)
        gc = grad_cn[b0: b0 + R].copy()
        P = np.empty((R, H), gates.dtype)
        tc = np.empty(H, gates.dtype)
        for t in range(_block(lengths, b0, R, da) - 1, -1, -1):
            for r in range(R):
                b = b0 + r
                if t >= lengths[b]:
                    continue
                row = da[t, b]
                a = gates[t, b]
                c_prev = cells[t - 1, b] if t > 0 else c0[b]
                tc[:] = cells[t, b]
                tanh_(tc)
                for j in range(H):
                    i = a[j]
                    f = a[H + j]
                    g = a[2 * H + j]
                    o = a[3 * H + j]
                    dh = gh[r, j] + grad_out[b, t, j]
                    dc = gc[r, j] + dh * o * (1 - tc[j] * tc[j])
                    row[j] = dc * g * i * (1 - i)
                    row[H + j] = dc * c_prev[j] * f * (1 - f)
                    row[2 * H + j] = dc * i * (1 - g * g)
                    row[3 * H + j] = dh * tc[j] * o * (1 - o)
                    gc[r, j] = dc * f
            np.dot(da[t, b0: b0 + R], w, P)  # dL/dh_{t-1} = dL/da_t W_hh
            for r in range(R):
                if t < lengths[b0 + r]:
                    gh[r] = P[r]
        grad_h0[b0: b0 + R] = gh
        grad_c0[b0: b0 + R] = gc


@_pjit
def gru_forward_tm(xw, h0, wt, b_hh, lengths, rows, out, h_n, hn):
    """``gru_forward`` on blocks of ``rows`` rows, time-major: xw (T, B, 3H) holds x W_ih + b_ih and is
    overwritten by r, z, n; h W_hn + b_hn goes into ``hn`` (T, B, H) when it is not empty (training)."""
    T, B, G = xw.shape
    H = G // 3
    keep = hn.shape[0] > 0
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        h = h0[b0: b0 + R].copy()  # (R, H)
        A = np.empty((R, G), xw.dtype)
        for t in range(_block_bm(lengths, b0, R, out)):
            np.dot(h, wt, A)  # (R, H) x (H, 3H)
            for r in range(R):
                b = b0 + r
                if t < lengths[b]:
                    a = A[r]
                    for j in range(G):
                        a[j] += b_hh[j]
                    _gru_update(xw[t, b], a, h[r], xw[t, b], h[r])
                    if keep:
                        hn[t, b] = a[2 * H:]
                    out[b, t] = h[r]
        h_n[b0: b0 + R] = h


@_pjit
def gru_backward_tm(gates, hn, states, h0, grad_out, grad_hn, w, lengths, rows, dx, dh_lin, grad_h0):
    """``gru_backward`` on blocks of ``rows`` rows, time-major; ``w`` is weight_hh itself (3H, H)."""
    T, B, G = gates.shape
    H = G // 3
    for blk in prange((B + rows - 1) // rows):
        b0 = blk * rows
        R = min(rows, B - b0)
        gh = grad_hn[b0: b0 + R].copy()  # (R, H)
        P = np.empty((R, H), gates.dtype)
        _block(lengths, b0, R, dx)
        for t in range(_block(lengths, b0, R, dh_lin) - 1, -1, -1):
            for r in range(R):
                b = b0 + r
                if t >= lengths[b]:
                    continue
                rx = dx[t, b]
                rh = dh_lin[t, b]
                a = gates[t, b]
                h_prev = states[b, t - 1] if t > 0 else h0[b]
                for j in range(H):
                    rr = a[j]
                    z = a[H + j]
                    n = a[2 * H + j]
                    dh = gh[r, j] + grad_out[b, t, j]
                    dn = dh * (1 - z) * (1 - n * n)  # through tanh
                    dz = dh * (h_prev[j] - n) * z * (1 - z)
                    dr = dn * hn[t, b, j] * rr * (1 - rr)
                    rx[j] = dr
                    rx[H + j] = dz
                    rx[2 * H + j] = dn
                    rh[j] = dr
                    rh[H + j] = dz
                    rh[2 * H + j] = dn * rr
                    gh[r, j] = dh * z
            np.dot(dh_lin[t, b0: b0 + R], w, P)  # + dL/d(hidden projection) W_hh
            for r in range(R):
                if t < lengths[b0 + r]:
                    for j in range(H):
                        gh[r, j] += P[r, j]
        grad_h0[b0: b0 + R] = gh
