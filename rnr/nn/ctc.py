"""CTC decoding: from per-frame class log-probabilities to a labelling (best path, prefix beam search, streaming).

A network trained with CTC gives, per frame ``t``, log-probabilities ``log_probs[t, c]`` over ``C`` classes, one of
which (``blank``, 0 by default) means "no label". A path picks one class per frame; collapsing it (merge repeated
classes, then drop blanks: ``a a _ a b b -> a a b``) gives a labelling, and the probability of a labelling is the sum
over every path that collapses to it. Decoding looks for the most probable labelling.

- ``ctc_greedy``: the best path (argmax per frame), collapsed. Exact for the best *path*, not the best labelling.
- ``ctc_beam_search``: prefix beam search, which sums paths per prefix and keeps the ``beam_width`` best prefixes.
- ``GreedyStream``: best path decoding of frames as they arrive, each label emitted on its first frame.

Shapes: ``(T, C)`` for one sequence, ``(B, T, C)`` with ``lengths`` ``(B,)`` for a padded batch (batch-first, as
everywhere in rnr); a labelling is a list of class indices, blanks excluded. Decoding runs in numpy on the CPU in
float64; torch tensors (any device) and numpy arrays are both accepted.

References: Graves, Fernandez, Gomez & Schmidhuber (2006), "Connectionist temporal classification: labelling
unsegmented sequence data with recurrent neural networks", ICML (CTC, best path decoding); Hannun, Maas, Jurafsky &
Ng (2014), "First-pass large vocabulary continuous speech recognition using bi-directional recurrent DNNs",
arXiv:1408.2873 (prefix beam search, Algorithm 1).
"""
import warnings

import numpy as np
import torch

__all__ = ["ctc_greedy", "ctc_beam_search", "GreedyStream"]

NEG_INF = -np.inf


def _as_array(x, name: str) -> np.ndarray:
    """``x`` (a torch tensor on any device, a numpy array or nested lists) as a float64 numpy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a float tensor or array of log-probabilities, got {type(x).__name__}; pass the "
            f"network's log_softmax output"
        ) from None


def _check_index(value, name: str, rule: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int ({rule}), got {type(value).__name__} {value!r}")
    return int(value)


def _check_blank(blank, classes: int) -> int:
    blank = _check_index(blank, "blank", "the class index of the CTC blank")
    if not 0 <= blank < classes:
        raise ValueError(
            f"blank must be a class index in [0, C={classes}), got {blank}; pass the blank index the network was "
            f"trained with (the last dimension of log_probs holds the C classes)"
        )
    return blank


def _check_frames(lp: np.ndarray, name: str, at: tuple = ()) -> None:
    """Log-probabilities are finite or -inf (probability 0); NaN and +inf are errors."""
    bad = ~(lp < np.inf)  # True at NaN and +inf
    if bad.any():
        index = at + tuple(int(i) for i in np.argwhere(bad)[0])
        value = lp[tuple(index[len(at):])]
        raise ValueError(
            f"{name} must hold log-probabilities (finite or -inf), got {value} at index {index}; a NaN usually "
            f"comes from the network's input or a diverged training run, so check those (torch.isnan(...).any())"
        )


def _check_inputs(log_probs, lengths, blank) -> tuple[np.ndarray, np.ndarray, bool, int]:
    """Returns log_probs as a float64 batch (B, T, C), the lengths (B,), whether a batch was given, and blank."""
    lp = _as_array(log_probs, "log_probs")
    if lp.ndim not in (2, 3):
        raise ValueError(
            f"log_probs must have 2 dimensions (T, C) for one sequence or 3 (B, T, C) for a batch, got {lp.ndim} "
            f"with shape {lp.shape}; put time before classes, batch first"
        )
    batched = lp.ndim == 3
    if not batched:
        if lengths is not None:
            raise ValueError(
                f"lengths is for a batch (B, T, C) only, got lengths with log_probs of shape {lp.shape}; leave "
                f"lengths=None for one sequence, or add a batch dimension with log_probs[None]"
            )
        lp = lp[None]  # (1, T, C)
    B, T, C = lp.shape
    blank = _check_blank(blank, C)
    if lengths is None:
        return lp, np.full(B, T, dtype=np.int64), batched, blank
    n = lengths.detach().cpu().numpy() if isinstance(lengths, torch.Tensor) else np.asarray(lengths)
    if n.dtype.kind not in "iu":
        raise TypeError(
            f"lengths must hold integers (frames per sequence), got dtype {n.dtype}; convert it with "
            f"lengths.long() or np.asarray(lengths, dtype=int)"
        )
    if n.shape != (B,):
        raise ValueError(
            f"lengths must have shape (B,) = ({B},), one length per sequence, got shape {n.shape}; pass the number "
            f"of real frames of each sequence"
        )
    for i, length in enumerate(n.tolist()):
        if not 0 <= length <= T:
            raise ValueError(
                f"lengths must lie in [0, T={T}] (real frames of each padded sequence), got lengths[{i}]={length}; "
                f"pad log_probs to the longest sequence, or pass lengths after any downsampling of the frames"
            )
    return lp, n.astype(np.int64), batched, blank


def _collapse(best: np.ndarray, blank: int, previous: int = -1) -> list[int]:
    """Collapse a path (T,) of class indices: a label counts where it differs from the frame before, blanks drop.
    ``previous`` is the class of the frame before the first (-1: none)."""
    if len(best) == 0:
        return []
    before = np.concatenate([[previous], best[:-1]])  # (T,)
    return best[(best != blank) & (best != before)].tolist()


def ctc_greedy(log_probs, lengths=None, blank: int = 0) -> list[int] | list[list[int]]:
    """Best path decoding: the argmax class of each frame, repeats merged, blanks dropped.

    Parameters
    ----------
    log_probs : torch.Tensor or array_like, shape (T, C) or (B, T, C)
        Per-frame class log-probabilities (or logits: the argmax is the same).
    lengths : array_like of int, shape (B,), optional
        Real frames of each sequence of a padded batch, in ``[0, T]``; frames past them are never read. All ``T``
        when None. Only for 3-D ``log_probs``.
    blank : int
        Class index of the CTC blank.

    Returns
    -------
    list of int for ``(T, C)`` input, list of lists of int (one per sequence) for ``(B, T, C)``.

    Examples
    --------
    >>> frames = torch.tensor([1, 1, 0, 1, 2, 2])  # a a _ a b b
    >>> ctc_greedy(torch.log(torch.nn.functional.one_hot(frames, 3) * 0.9 + 0.1 / 3))
    [1, 1, 2]
    """
    lp, lengths, batched, blank = _check_inputs(log_probs, lengths, blank)
    out = []
    for b, length in enumerate(lengths.tolist()):
        frames = lp[b, :length]  # (T_b, C)
        _check_frames(frames, "log_probs", (b,) if batched else ())
        out.append(_collapse(frames.argmax(axis=1), blank))
    return out if batched else out[0]


def _prefix_beam_search(lp: np.ndarray, beam_width: int, blank: int, prune: float | None) -> tuple[list[int], float]:
    """Prefix beam search over one sequence ``lp`` (T, C); returns the best labelling and its log-probability.

    Prefixes are nodes of a tree (``parent``, ``label``), so one prefix is one int however long it grows. Each
    frame scores all candidates at once: the K prefixes staying as they are, and the K x N extensions by each of
    the N label classes; an extension that equals a prefix already in the beam is merged into it.
    """
    T, C = lp.shape
    parent, label = [-1], [-1]  # the prefix tree; node 0 is the empty prefix
    child = {}                  # (node, class) -> node, so equal prefixes are one node
    beams = np.array([0])       # (K,) node of each prefix in the beam
    last = np.array([-1])       # (K,) last label of each prefix, -1 for the empty prefix
    p_b = np.array([0.0])       # (K,) log P(prefix, paths ending in blank) over frames so far
    p_nb = np.array([NEG_INF])  # (K,) log P(prefix, paths ending in its last label)
    labels = np.array([c for c in range(C) if c != blank], dtype=np.int64)  # (C - 1,)
    for t in range(T):
        lp_t, cols = lp[t], labels  # (C,), (N,): the label classes tried at this frame
        if prune is not None:
            keep = lp_t >= prune
            keep[lp_t.argmax()] = True  # never prune the best class, so the beam never empties
            lp_t, cols = np.where(keep, lp_t, NEG_INF), labels[keep[labels]]
        p_all = np.logaddexp(p_b, p_nb)                                # (K,)
        stay_b = p_all + lp_t[blank]                                   # (K,) a blank: the prefix stays
        stay_nb = p_nb + np.where(last >= 0, lp_t[last], NEG_INF)      # (K,) its last label repeated: it stays
        # a new label extends the prefix; the same label as its last one only after a blank (else it merges)
        ext = np.where(cols == last[:, None], p_b[:, None], p_all[:, None]) + lp_t[cols]  # (K, N)
        # prefix k extended by c may be prefix j, already in the beam: one prefix, so its probabilities add
        col = np.full(C, -1)
        col[cols] = np.arange(len(cols))
        row = {node: k for k, node in enumerate(beams.tolist())}
        for j, node in enumerate(beams.tolist()):
            k, i = row.get(parent[node]), col[label[node]]
            if k is not None and i >= 0:
                stay_nb[j] = np.logaddexp(stay_nb[j], ext[k, i])
                ext[k, i] = NEG_INF
        # candidates: the K prefixes as they stay, then the K x N extensions (which end in a label, not a blank)
        K, N = ext.shape
        cand_b = np.concatenate([stay_b, np.full(K * N, NEG_INF)])  # (K + K N,)
        cand_nb = np.concatenate([stay_nb, ext.ravel()])             # (K + K N,)
        total = np.logaddexp(cand_b, cand_nb)
        order = np.argsort(-total, kind="stable")[:beam_width]
        if np.isfinite(total[order[0]]):
            order = order[np.isfinite(total[order])]  # paths of probability 0 are not prefixes
        nodes, last_new = [], []
        for i in order.tolist():
            if i < K:
                nodes.append(int(beams[i]))
                last_new.append(int(last[i]))
                continue
            k, n = divmod(i - K, N)
            key = (int(beams[k]), int(cols[n]))
            if key not in child:
                child[key] = len(parent)
                parent.append(key[0])
                label.append(key[1])
            nodes.append(child[key])
            last_new.append(key[1])
        beams, last, p_b, p_nb = np.array(nodes), np.array(last_new), cand_b[order], cand_nb[order]
    node, out = int(beams[0]), []  # the beam is sorted: the first prefix is the most probable
    while node > 0:
        out.append(label[node])
        node = parent[node]
    return out[::-1], float(np.logaddexp(p_b[0], p_nb[0]))


def ctc_beam_search(log_probs, lengths=None, beam_width: int = 8, blank: int = 0, prune: float | None = None,
                    return_scores: bool = False):
    """Prefix beam search (Hannun et al. 2014): the most probable labelling among the prefixes a beam keeps.

    For each prefix ``l`` the search keeps, in log space, ``p_b(l)`` and ``p_nb(l)``: the probability of the paths
    so far that collapse to ``l`` and end in a blank, or in the last label of ``l``. With ``y = exp(log_probs[t])``,
    frame ``t`` updates them as

    - blank: ``p_b'(l) += (p_b(l) + p_nb(l)) y[blank]``
    - the last label ``c`` of ``l`` again: ``p_nb'(l) += p_nb(l) y[c]`` (repeats merge),
      and ``p_nb'(l + c) += p_b(l) y[c]`` (a blank between keeps both)
    - another label ``c``: ``p_nb'(l + c) += (p_b(l) + p_nb(l)) y[c]``

    after which equal prefixes are one (their probabilities add) and the ``beam_width`` most probable
    ``p_b + p_nb`` are kept. The plain loop it equals, one prefix and one class at a time::

        beams = {(): (0.0, -inf)}                                # prefix -> (log p_b, log p_nb)
        for t in range(T):
            new = defaultdict(lambda: (-inf, -inf))
            for l, (b, nb) in beams.items():
                for c in range(C):
                    p = log_probs[t, c]
                    if c == blank:
                        new[l] = (logaddexp(new[l][0], logaddexp(b, nb) + p), new[l][1])
                    elif l and c == l[-1]:
                        new[l] = (new[l][0], logaddexp(new[l][1], nb + p))
                        new[l + (c,)] = (new[l + (c,)][0], logaddexp(new[l + (c,)][1], b + p))
                    else:
                        new[l + (c,)] = (new[l + (c,)][0], logaddexp(new[l + (c,)][1], logaddexp(b, nb) + p))
            beams = dict(sorted(new.items(), key=lambda kv: -logaddexp(*kv[1]))[:beam_width])

    This implementation scores the whole beam per frame with numpy (``tests/nn/test_ctc.py`` holds it to the loop).
    A beam at least as wide as the number of distinct prefixes is exact: it returns the labelling of highest
    total probability. A narrower beam may lose paths, so its score is then a lower bound of the labelling's
    log-probability.

    Parameters
    ----------
    log_probs : torch.Tensor or array_like, shape (T, C) or (B, T, C)
        Per-frame class log-probabilities (``log_softmax`` of the network's output).
    lengths : array_like of int, shape (B,), optional
        Real frames of each sequence of a padded batch, in ``[0, T]``; frames past them are never read. All ``T``
        when None. Only for 3-D ``log_probs``.
    beam_width : int
        Prefixes kept after each frame (>= 1). Wider is slower and finds more probable labellings.
    blank : int
        Class index of the CTC blank.
    prune : float, optional
        Skip at each frame the classes whose log-probability is below ``prune`` (e.g. ``np.log(1e-3)``), except the
        most probable one; fewer candidates, so faster for many classes. None tries every class.
    return_scores : bool
        Return ``(labelling, log_prob)`` pairs instead of labellings: ``log_prob`` is the log-probability of the
        labelling summed over the paths the beam kept (``-ctc_loss`` of that target when the beam is exact).

    Returns
    -------
    For ``(T, C)`` input a labelling (list of int), or a ``(labelling, log_prob)`` pair with ``return_scores``;
    for ``(B, T, C)`` a list of those, one per sequence.

    Examples
    --------
    >>> y = torch.tensor([[0.6, 0.4], [0.6, 0.4]])  # blank, then "a": the best path is blank, blank
    >>> ctc_greedy(y.log()), ctc_beam_search(y.log())  # "a" has 0.4*0.4 + 2*0.6*0.4 = 0.64 > 0.36
    ([], [1])
    """
    lp, lengths, batched, blank = _check_inputs(log_probs, lengths, blank)
    beam_width = _check_index(beam_width, "beam_width", "prefixes kept per frame")
    if beam_width < 1:
        raise ValueError(f"beam_width must be >= 1 (prefixes kept per frame), got {beam_width}; try 8, or use "
                         f"ctc_greedy for the best path alone")
    if prune is not None:
        if isinstance(prune, bool) or not isinstance(prune, (int, float, np.integer, np.floating)):
            raise TypeError(f"prune must be a float (a log-probability) or None, got {type(prune).__name__} {prune!r}")
        if np.isnan(prune):
            raise ValueError("prune must be a log-probability threshold such as np.log(1e-3), got nan; pass None to "
                             "try every class")
        prune = float(prune)
    if not isinstance(return_scores, (bool, np.bool_)):
        raise TypeError(f"return_scores must be a bool, got {type(return_scores).__name__} {return_scores!r}")
    out, warned = [], False
    for b, length in enumerate(lengths.tolist()):
        frames = lp[b, :length]  # (T_b, C)
        _check_frames(frames, "log_probs", (b,) if batched else ())
        if (return_scores or prune is not None) and not warned and length:
            warned = _warn_unnormalised(frames, (b,) if batched else ())
        labelling, score = _prefix_beam_search(frames, beam_width, blank, prune)
        out.append((labelling, score) if return_scores else labelling)
    return out if batched else out[0]


def _warn_unnormalised(frames: np.ndarray, at: tuple) -> bool:
    """Warn (and return True) when a frame's probabilities do not sum to 1: logits or probabilities passed for
    log-probabilities. The best labelling is the same for logits, but scores and ``prune`` thresholds are not."""
    sums = np.logaddexp.reduce(frames, axis=1)  # (T_b,): 0 for log-probabilities
    t = int(np.abs(sums).argmax())
    if abs(sums[t]) <= 1e-3:
        return False
    warnings.warn(
        f"log_probs should be log-probabilities (each frame's exp summing to 1), got a frame at index {at + (t,)} "
        f"whose logsumexp is {sums[t]:.4g}; scores and prune assume log_softmax(logits, dim=-1), so apply it first",
        stacklevel=3,
    )
    return True


class GreedyStream:
    """Best path decoding of one sequence whose frames arrive in pieces: ``push`` returns the labels they commit.

    A label is emitted on the first frame whose argmax it is, unless the frame before (possibly the last frame of
    the previous ``push``) had the same argmax, so the labels of all pushes, concatenated, are ``ctc_greedy`` of all
    the frames, however they were split. ``reset`` starts a new sequence.

    Args:
        blank: class index of the CTC blank.

    Example:
        >>> stream = GreedyStream()
        >>> frames = torch.log(torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.9, 0.1], [0.3, 0.7]]))  # a a _ a
        >>> stream.push(frames[:1]), stream.push(frames[1:2]), stream.push(frames[2:])
        ([1], [], [1])
    """

    def __init__(self, blank: int = 0):
        blank = _check_index(blank, "blank", "the class index of the CTC blank")
        if blank < 0:
            raise ValueError(f"blank must be a class index >= 0, got {blank}; pass the blank index the network "
                             f"was trained with")
        self.blank = blank
        self.reset()

    def reset(self) -> "GreedyStream":
        """Forget the frames pushed so far: the next ``push`` starts a new sequence."""
        self._previous = -1   # argmax class of the last frame pushed, -1 before the first
        self._classes = None  # C, fixed by the first non-empty push
        return self

    def push(self, log_probs) -> list[int]:
        """Decode the next frames ``log_probs`` (t, C), t >= 0; returns the labels they commit (list of int)."""
        lp = _as_array(log_probs, "log_probs")
        if lp.ndim != 2:
            raise ValueError(
                f"log_probs must have 2 dimensions (t, C): the next frames of one sequence, got {lp.ndim} with shape "
                f"{lp.shape}; push one sequence at a time, a single frame as log_probs[None]"
            )
        if len(lp) == 0:
            return []
        _check_blank(self.blank, lp.shape[1])
        if self._classes is not None and lp.shape[1] != self._classes:
            raise ValueError(
                f"log_probs must have the C={self._classes} classes of the frames pushed before, got shape "
                f"{lp.shape}; call reset() before a sequence from another network"
            )
        _check_frames(lp, "log_probs")
        best = lp.argmax(axis=1)  # (t,)
        labels = _collapse(best, self.blank, self._previous)
        self._previous, self._classes = int(best[-1]), lp.shape[1]
        return labels

    def __repr__(self) -> str:
        return "GreedyStream()" if self.blank == 0 else f"GreedyStream(blank={self.blank})"
