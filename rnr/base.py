"""The estimator contract every rnr estimator follows: scikit-learn's parameter conventions, and the run options.

``__init__`` stores each argument unchanged; ``get_params``/``set_params`` read and change them (so
``sklearn.base.clone`` and ``GridSearchCV`` work); the repr shows the arguments that differ from the defaults.
Run options say how a run is watched and where its files go, not what the model is (``RUN_OPTIONS``): they are
left out of reprs and model files, so that a loaded model refitted (e.g. by a backtest) never writes into, or
resumes from, the old run's folder.
"""
import inspect

RUN_OPTIONS = ("progress", "log_dir", "checkpoint_dir", "resume")


class Estimator:
    """scikit-learn's parameter conventions: every ``__init__`` argument is stored as given and read back by
    ``get_params``; ``set_params`` changes them; the repr shows those that differ from the defaults."""

    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        known = self._param_names()
        for name, value in params.items():
            if name not in known:
                raise ValueError(f"{type(self).__name__} has no parameter {name!r}; known: {known}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        default = type(self)()
        diff = [f"{k}={v!r}" for k, v in self.get_params().items()
                if getattr(default, k) != v and k not in RUN_OPTIONS]
        return f"{type(self).__name__}({', '.join(diff)})"


def model_params(estimator) -> dict:
    """The estimator's parameters for its model file: what the model is, without the run options (``RUN_OPTIONS``)."""
    return {k: v for k, v in estimator.get_params().items() if k not in RUN_OPTIONS}
