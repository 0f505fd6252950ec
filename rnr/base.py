"""The estimator contract every rnr estimator follows: scikit-learn's.

``__init__`` stores each argument unchanged and does nothing else; ``fit`` validates, learns and returns ``self``;
learned state ends in ``_``; ``get_params``/``set_params`` read and change the arguments, so ``sklearn.base.clone``
and ``GridSearchCV`` work (scikit-learn itself is not needed). The seed is ``random_state``.

Run options say how a run is watched and where its files go, not what the model is (``RUN_OPTIONS``). They are
keyword-only arguments after the model's settings, shown in no ``repr`` and written to no model file, so that a
loaded model refitted (by a backtest, say) never writes into, or resumes from, the old run's folder. ``progress``
defaults to ``None``: a bar where the output is a terminal, none elsewhere.
"""
import difflib
import inspect
import math
import os
import sys
from dataclasses import dataclass

RUN_OPTIONS = ("progress", "log_dir", "checkpoint_dir", "checkpoint_every", "resume")


def show_progress(progress: bool | None) -> bool:
    """``progress`` as given, or where it is None, whether standard error is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


@dataclass(frozen=True)
class Option:
    """One row of an estimator's option table (``OPTIONS``): the type and range an argument's value must have.

    kind: "int", "real" (finite), "bool", "choice" (one of ``choices``), "seed" (an int in [0, 2**63)), "path" (a
    str or path) or "any" (checked by the estimator itself). ``low``/``high`` bound numbers (``open_low``,
    ``open_high``: strictly); ``none``: None is allowed too; ``also``: other values allowed (e.g. "auto").
    """

    kind: str
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    none: bool = False
    choices: tuple = ()
    also: tuple = ()

    def rule(self) -> str:
        """The rule in words, e.g. "an int >= 1 or None"."""
        if self.kind == "bool":
            words = "True or False"
        elif self.kind == "choice":
            words = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "seed":
            words = "an int in [0, 2**63)"
        elif self.kind == "path":
            words = "a folder path"
        else:
            words = "an int" if self.kind == "int" else "a finite number"
            if self.low is not None:
                words += f" {'>' if self.open_low else '>='} {self.low:g}"
            if self.high is not None:
                words += f"{' and' if self.low is not None else ''} {'<' if self.open_high else '<='} {self.high:g}"
        return " or ".join([words, *(repr(a) for a in self.also)] + (["None"] if self.none else []))

    def check(self, name: str, value, owner: str, default=inspect.Parameter.empty) -> None:
        """Raise TypeError (wrong type) or ValueError (out of range) naming the option, the rule, the value and the
        default."""
        if self.kind == "any" or (value is None and self.none):
            return
        if any(value == a and type(value) is type(a) for a in self.also):
            return
        wrong_type = {
            "bool": not isinstance(value, bool),
            "int": isinstance(value, bool) or not isinstance(value, int),
            "seed": isinstance(value, bool) or not isinstance(value, int),
            "real": isinstance(value, bool) or not isinstance(value, (int, float)),
            "path": not isinstance(value, (str, os.PathLike)),
            "choice": False,
        }[self.kind]
        if not wrong_type and self.kind == "choice":
            ok = any(value == c and type(value) is type(c) for c in self.choices)
        elif not wrong_type and self.kind in ("int", "real"):
            ok = (math.isfinite(value) and (self.low is None or (value > self.low if self.open_low
                                                                    else value >= self.low))
                  and (self.high is None or (value < self.high if self.open_high else value <= self.high)))
        elif not wrong_type and self.kind == "seed":
            ok = 0 <= value < 2**63
        else:
            ok = not wrong_type
        if not ok:
            error = TypeError if wrong_type else ValueError
            fix = "" if default is inspect.Parameter.empty else f"; the default is {name}={default!r}"
            raise error(f"{owner}: {name} must be {self.rule()}, got {type(value).__name__} {value!r}{fix}")


def check_options(estimator) -> None:
    """Check every argument of ``estimator`` against its class's option table ``OPTIONS`` (fit calls this first)."""
    owner, defaults = type(estimator).__name__, estimator._defaults()
    for name, option in type(estimator).OPTIONS.items():
        option.check(name, getattr(estimator, name), owner, defaults[name])


PROGRESS = Option("bool", none=True)  # the run options every estimator shares
RUN_OPTION_TABLE = {"progress": PROGRESS, "log_dir": Option("path", none=True),
                    "checkpoint_dir": Option("path", none=True), "checkpoint_every": Option("int", 1, none=True),
                    "resume": Option("bool")}


class Estimator:
    """scikit-learn's parameter conventions: every ``__init__`` argument is stored as given and read back by
    ``get_params``; ``set_params`` changes them; the repr shows the required ones and those that differ from their
    defaults, never the run options. ``OPTIONS`` maps every argument to its ``Option`` (its type and range)."""

    OPTIONS: dict = {}

    def __new__(cls, *args, **kwargs):
        unknown = sorted(set(kwargs) - set(cls._param_names()))
        if unknown:  # before Python's own "unexpected keyword argument", a message that names the known ones
            close = {u: difflib.get_close_matches(u, cls._param_names(), n=1) for u in unknown}
            hint = " ".join(f"Did you mean {c[0]!r} for {u!r}?" for u, c in close.items() if c)
            raise TypeError(f"{cls.__name__} got unknown option(s) {unknown}; known: {cls._param_names()}. {hint}"
                            .rstrip())
        return super().__new__(cls)

    @classmethod
    def _defaults(cls) -> dict:
        """Argument name -> default (``inspect.Parameter.empty`` where it has none), in the signature's order."""
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.default for p in params
                if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}

    @classmethod
    def _param_names(cls) -> list[str]:
        return list(cls._defaults())

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; known: {known}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):  # called by scikit-learn only, so it is installed
        from sklearn.utils import Tags, TargetTags  # optional: scikit-learn, only when it asks

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), non_deterministic=False)

    def __repr__(self) -> str:
        shown = [f"{k}={getattr(self, k)!r}" for k, d in self._defaults().items()
                 if k not in RUN_OPTIONS and (d is inspect.Parameter.empty or not _same(getattr(self, k), d))]
        text = ", ".join(shown)
        chosen = {k: v for k, v in getattr(self, "chosen_", {}).items() if k != "updates"}  # what the data decided
        if chosen:
            words = "chose " + ", ".join(f"{k}={v!r}" for k, v in chosen.items())
            text = f"{text}; {words}" if text else words
        return f"{type(self).__name__}({text})"


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. arrays
        return a is b


def model_params(estimator) -> dict:
    """The estimator's parameters for its model file: what the model is, without the run options (``RUN_OPTIONS``)."""
    return {k: v for k, v in estimator.get_params().items() if k not in RUN_OPTIONS}
