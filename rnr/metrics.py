"""Forecast accuracy: point errors, the M4 scores (sMAPE, MASE, OWA) and interval/quantile scores.

Every function takes numpy-compatible arrays and returns a Python float; a panel is scored as M4 scores it,
each metric per series and then the plain mean over series (``evaluate_panel``).

Definitions (``y`` actuals, ``f`` forecasts, both of shape ``(h,)``):

- ``mae  = mean |y - f|``, ``rmse = sqrt(mean (y - f)^2)``
- ``smape = mean 200 |y - f| / (|y| + |f|)`` in percent, a step with ``|y| + |f| = 0`` scoring 0
- ``mase = mean |y - f| / mean_{t > m} |x_t - x_{t-m}|`` with ``x`` the in-sample (training) series
- ``owa = (smape / smape_naive2 + mase / mase_naive2) / 2``

References: Makridakis, Spiliotis & Assimakopoulos (2020), "The M4 Competition: 100,000 time series and 61
forecasting methods", International Journal of Forecasting 36(1):54-74 (sMAPE, MASE, OWA, the Naive2 benchmark);
Hyndman & Koehler (2006), "Another look at measures of forecast accuracy", IJF 22(4):679-688 (MASE);
Koenker & Bassett (1978), "Regression quantiles", Econometrica 46(1):33-50 (the pinball loss).

Text: ``bleu``, and ``edit_distance`` / ``error_rate`` for transcripts (the word error rate over lists of words, the
character error rate over strings); Levenshtein (1966), "Binary codes capable of correcting deletions, insertions,
and reversals", Soviet Physics Doklady 10(8):707-710.
"""
import numpy as np

__all__ = ["mae", "rmse", "smape", "mase", "owa", "coverage", "pinball", "evaluate_panel", "edit_distance",
           "error_rate"]


def _as_1d(x, name: str) -> np.ndarray:
    """``x`` as a finite float64 vector ``(n,)``, n >= 1; errors name ``name``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a numeric array, got {type(x).__name__}; pass a list or numpy array of numbers"
        ) from None
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be 1-dimensional (one series), got shape {arr.shape}; score one series at a time or "
            f"use evaluate_panel for a list of series"
        )
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one value, got an empty array")
    if not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(
            f"{name} must be finite, got {arr[bad]} at index {bad}; fill or drop missing values before scoring"
        )
    return arr


def _pair(y, f, y_name: str = "y", f_name: str = "f") -> tuple[np.ndarray, np.ndarray]:
    y, f = _as_1d(y, y_name), _as_1d(f, f_name)
    if y.shape != f.shape:
        raise ValueError(
            f"{f_name} must have the shape of {y_name}, got {f.shape} and {y.shape}; forecast exactly the steps "
            f"you score"
        )
    return y, f


def mae(y, f) -> float:
    """Mean absolute error ``mean |y - f|``.

    Parameters
    ----------
    y, f : array_like, shape (h,)
        Actuals and forecasts.
    """
    y, f = _pair(y, f)
    return float(np.mean(np.abs(y - f)))


def rmse(y, f) -> float:
    """Root mean squared error ``sqrt(mean (y - f)^2)``; ``y``, ``f`` of shape ``(h,)``."""
    y, f = _pair(y, f)
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(y, f) -> float:
    """Symmetric MAPE as M4 defines it, in percent: ``mean 200 |y - f| / (|y| + |f|)``.

    A step where ``y = f = 0`` has ``0/0``, defined as 0 (a perfect forecast); every other step lies in [0, 200].

    Parameters
    ----------
    y, f : array_like, shape (h,)
        Actuals and forecasts.

    Examples
    --------
    >>> smape([100.0, 0.0], [110.0, 0.0])  # (200 * 10 / 210 + 0) / 2
    4.761904761904762
    """
    y, f = _pair(y, f)
    num, den = 200.0 * np.abs(y - f), np.abs(y) + np.abs(f)
    return float(np.mean(np.divide(num, den, out=np.zeros_like(num), where=den > 0)))


def _mase_scale(insample, m: int, name: str = "insample") -> float:
    """The MASE denominator ``mean_{t >= m} |x_t - x_{t-m}|`` (0-based t) of a training series ``(n,)``."""
    if isinstance(m, bool) or not isinstance(m, (int, np.integer)):
        raise TypeError(f"m must be an int (the seasonal period, 1 for none), got {type(m).__name__} {m!r}")
    if m < 1:
        raise ValueError(f"m must be >= 1 (the seasonal period, 1 for none), got {m}")
    x = _as_1d(insample, name)
    if x.size < m + 1:
        raise ValueError(
            f"{name} must have at least m + 1 = {m + 1} values to form one seasonal difference, got {x.size}; "
            f"use a smaller m or a longer history"
        )
    scale = float(np.mean(np.abs(x[m:] - x[:-m])))
    if scale == 0.0:
        raise ValueError(
            f"{name} has mean absolute seasonal difference 0 (it repeats exactly with period m={m}), so MASE "
            f"divides by zero; score this series with mae or smape instead (M4 has no such series)"
        )
    return scale


def mase(y, f, insample, m: int) -> float:
    """Mean absolute scaled error: ``mae(y, f)`` over the in-sample mean absolute seasonal difference.

    ``scale = mean_{t = m .. n-1} |insample_t - insample_{t-m}|``, the MAE of the seasonal naive forecast
    one season ahead within the training data (Hyndman & Koehler 2006; M4 uses ``m`` = 24 for Hourly).

    Parameters
    ----------
    y, f : array_like, shape (h,)
        Actuals and forecasts.
    insample : array_like, shape (n,)
        The training series the forecast was made from; needs ``n >= m + 1``.
    m : int
        Seasonal period (1 for non-seasonal data).

    Raises
    ------
    ValueError
        When ``insample`` is shorter than ``m + 1``, or when its scale is 0 (a series that repeats exactly with
        period ``m``). A zero scale raises rather than returning ``inf`` so that one degenerate series cannot
        silently turn a panel mean into ``inf``; M4 has no such series.
    """
    y, f = _pair(y, f)
    return float(np.mean(np.abs(y - f))) / _mase_scale(insample, m)


def owa(smape_value: float, mase_value: float, naive2_smape: float, naive2_mase: float) -> float:
    """Overall weighted average of M4: ``(smape / naive2_smape + mase / naive2_mase) / 2``.

    The inputs are panel scores (already averaged over series); 1.0 means as good as Naive2, lower is better.
    M4 Hourly: Naive2 scores sMAPE 18.383 and MASE 2.395.
    """
    vals = {"smape_value": smape_value, "mase_value": mase_value, "naive2_smape": naive2_smape,
            "naive2_mase": naive2_mase}
    for name, v in vals.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {v}")
    for name in ("naive2_smape", "naive2_mase"):
        if vals[name] == 0:
            raise ValueError(f"{name} must be > 0 (it divides), got 0; pass Naive2's score on the same panel")
    return float((smape_value / naive2_smape + mase_value / naive2_mase) / 2.0)


def coverage(y, lo, hi) -> float:
    """Share of actuals inside their interval, ``mean(lo <= y <= hi)``, bounds included.

    Parameters
    ----------
    y, lo, hi : array_like, shape (n,)
        Actuals and the lower and upper interval bounds, with ``lo <= hi`` everywhere.
    """
    y, lo = _pair(y, lo, "y", "lo")
    _, hi = _pair(y, hi, "y", "hi")
    if (lo > hi).any():
        k = int(np.flatnonzero(lo > hi)[0])
        raise ValueError(
            f"lo must be <= hi at every step, got lo={lo[k]} > hi={hi[k]} at index {k}; swap the bounds or sort "
            f"the quantiles"
        )
    return float(np.mean((lo <= y) & (y <= hi)))


def pinball(y, q_pred, q: float) -> float:
    """Pinball (quantile) loss of the ``q``-quantile forecast ``q_pred``: ``mean max(q e, (q - 1) e)``, ``e = y - q_pred``.

    Minimised in expectation by the true ``q``-quantile; at ``q = 0.5`` it is half the MAE.

    Parameters
    ----------
    y, q_pred : array_like, shape (h,)
        Actuals and the forecast quantile.
    q : float
        Quantile level in (0, 1).
    """
    if isinstance(q, bool) or not isinstance(q, (int, float, np.floating)):
        raise TypeError(f"q must be a float in (0, 1), got {type(q).__name__} {q!r}")
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be in (0, 1) (a quantile level such as 0.1 or 0.9), got {q}")
    y, f = _pair(y, q_pred, "y", "q_pred")
    e = y - f
    return float(np.mean(np.maximum(q * e, (q - 1.0) * e)))


def evaluate_panel(actuals, forecasts, insamples, m: int) -> dict:
    """Score a panel as M4 does: each metric per series, then the unweighted mean over series.

    Parameters
    ----------
    actuals, forecasts : list of array_like, each of shape (h_i,)
        Per series, the test values and the forecasts of them (a 2-D array ``(S, h)`` works too).
    insamples : list of array_like, each of shape (n_i,)
        Per series, the training data; scales MASE.
    m : int
        Seasonal period for MASE.

    Returns
    -------
    dict
        ``{"smape", "mase", "mae", "rmse"}``: floats, each the mean over series of the per-series value.
        (MAE and RMSE are in the data's units, so large series dominate them; sMAPE and MASE are scale-free.)

    Examples
    --------
    >>> evaluate_panel([[2.0, 2.0]], [[1.0, 3.0]], [[0.0, 1.0, 2.0]], m=1)["mase"]
    1.0
    """
    lists = {"actuals": actuals, "forecasts": forecasts, "insamples": insamples}
    for name, v in lists.items():
        if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__len__"):
            raise TypeError(f"{name} must be a list of arrays (one per series), got {type(v).__name__}")
    n = len(actuals)
    if n == 0:
        raise ValueError("actuals must hold at least one series, got an empty list")
    for name in ("forecasts", "insamples"):
        if len(lists[name]) != n:
            raise ValueError(
                f"{name} must hold one array per series like actuals ({n}), got {len(lists[name])}; align the lists"
            )
    rows = np.empty((n, 4))  # (S, 4): smape, mase, mae, rmse per series
    for i in range(n):
        y, f = _pair(actuals[i], forecasts[i], f"actuals[{i}]", f"forecasts[{i}]")
        ae = np.abs(y - f)
        den = np.abs(y) + np.abs(f)
        rows[i, 0] = np.mean(np.divide(200.0 * ae, den, out=np.zeros_like(ae), where=den > 0))
        rows[i, 1] = np.mean(ae) / _mase_scale(insamples[i], m, f"insamples[{i}]")
        rows[i, 2] = np.mean(ae)
        rows[i, 3] = np.sqrt(np.mean(ae**2))
    return dict(zip(("smape", "mase", "mae", "rmse"), rows.mean(axis=0).tolist()))


def bleu(hypotheses, references, tokenize: str = "13a", lowercase: bool = False) -> float:
    """Corpus BLEU-4 (0-100; Papineni et al. 2002) of hypotheses against one reference each, computed by
    sacrebleu (Post 2018). ``tokenize="none"`` scores text that is already tokenised as it is; "13a" is
    sacrebleu's standard tokenisation of detokenised text (WMT's mteval-v13a)."""
    try:
        import sacrebleu  # optional: rnr[text]
    except ImportError:
        raise ImportError("bleu needs sacrebleu: pip install sacrebleu (or pip install 'rnr[text]')") from None
    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name} must be a list of str (one sentence each)")
    if len(hypotheses) != len(references) or not len(hypotheses):
        raise ValueError(f"hypotheses and references must be non-empty and of the same length, got "
                         f"{len(hypotheses)} and {len(references)}")
    # force: tokenised text is what tokenize="none" is for, so sacrebleu's warning about it does not apply
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)], tokenize=tokenize,
                                       lowercase=lowercase, force=tokenize == "none").score)


def _check_text(x, name: str) -> None:
    """A transcript: a str (a sequence of characters) or a list/tuple of tokens."""
    if not isinstance(x, (str, list, tuple)):
        raise TypeError(
            f"{name} must be a str (compared character by character) or a list of tokens (e.g. text.split() for "
            f"words), got {type(x).__name__}; convert it with list(...)"
        )


def edit_distance(reference, hypothesis) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions (each costing 1) that turn
    ``reference`` into ``hypothesis``.

    Items are compared with ``==``: a str is a sequence of characters, a list a sequence of tokens (words, class
    ids). The dynamic programme keeps one row, ``d[j]`` = distance between the reference read so far and
    ``hypothesis[:j]``, so memory is ``O(len(hypothesis))``; time is ``O(len(reference) len(hypothesis))`` after
    the common prefix and suffix are dropped.

    Examples
    --------
    >>> edit_distance("kitten", "sitting")  # k -> s, e -> i, + g
    3
    >>> edit_distance("the cat sat".split(), "the cat sat down".split())
    1
    """
    _check_text(reference, "reference")
    _check_text(hypothesis, "hypothesis")
    ref, hyp = list(reference), list(hypothesis)
    while ref and hyp and ref[-1] == hyp[-1]:  # a common suffix costs nothing
        ref.pop()
        hyp.pop()
    start = 0
    while start < min(len(ref), len(hyp)) and ref[start] == hyp[start]:  # nor does a common prefix
        start += 1
    ref, hyp = ref[start:], hyp[start:]
    d = list(range(len(hyp) + 1))  # distance from the empty reference to hyp[:j]: j insertions
    for i, r in enumerate(ref, start=1):
        diagonal, d[0] = d[0], i  # d[0]: i deletions; diagonal: d[i-1][j-1]
        for j, h in enumerate(hyp, start=1):
            substitute = diagonal + (r != h)  # free when r == h
            diagonal = d[j]
            d[j] = min(d[j] + 1, d[j - 1] + 1, substitute)  # delete r, insert h, or substitute
    return d[-1]


def error_rate(references, hypotheses) -> float:
    """Total edit distance over total reference length: the word error rate (WER) when each transcript is a list of
    words, the character error rate (CER) when each is a str.

    ``sum_i edit_distance(references[i], hypotheses[i]) / sum_i len(references[i])``: a corpus rate, so long
    utterances weigh more than short ones. It can exceed 1 when hypotheses insert many items.

    Parameters
    ----------
    references, hypotheses : list of str or of lists of tokens
        One transcript each per utterance, in the same order.

    Examples
    --------
    >>> error_rate(["kitten", "abc"], ["sitting", "abc"])  # (3 + 0) / (6 + 3)
    0.3333333333333333
    """
    for name, texts in (("references", references), ("hypotheses", hypotheses)):
        if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
            raise TypeError(
                f"{name} must be a list of transcripts (one str or token list per utterance), got "
                f"{type(texts).__name__}; wrap a single transcript in a list: [{name[:-1]}]"
            )
    if len(references) != len(hypotheses):
        raise ValueError(
            f"hypotheses must hold one transcript per reference, got {len(hypotheses)} hypotheses for "
            f"{len(references)} references; align the two lists utterance by utterance"
        )
    for i, (ref, hyp) in enumerate(zip(references, hypotheses)):
        _check_text(ref, f"references[{i}]")
        _check_text(hyp, f"hypotheses[{i}]")
    total = sum(len(ref) for ref in references)
    if total == 0:
        raise ValueError(
            f"references must hold at least one item in all, got {len(references)} references, all empty; an error "
            f"rate divides by the reference length, so score utterances that have a transcript (or use edit_distance)"
        )
    return sum(edit_distance(ref, hyp) for ref, hyp in zip(references, hypotheses)) / total
