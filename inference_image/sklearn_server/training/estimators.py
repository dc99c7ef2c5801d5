"""Which estimator class a hyperparameter names, which parameters it takes, and which metric scores it.

A hyperparameter never imports an arbitrary module: the estimator must come from scikit-learn, XGBoost or
LightGBM (``ALLOWED_PACKAGES``), and must be an estimator class (a scikit-learn ``BaseEstimator`` with
``fit`` and ``predict``). A short name (``RandomForestClassifier``) is looked up among scikit-learn's
estimators and XGBoost's and LightGBM's scikit-learn wrappers; a dotted name
(``sklearn.ensemble.RandomForestClassifier``) names the module itself.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any, Final

ALLOWED_PACKAGES: Final = ("sklearn", "xgboost", "lightgbm")
FRAMEWORK_WRAPPERS: Final = {
    "xgboost": ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor"),
    "lightgbm": ("LGBMClassifier", "LGBMRegressor", "LGBMRanker"),
}
"""The scikit-learn-compatible classes of the optional frameworks, found by short name."""


class EstimatorError(ValueError):
    """The estimator, a parameter or the metric a hyperparameter names cannot be used; the message says why
    and what is allowed."""


def resolve_estimator(name: str) -> type[Any]:
    """The estimator class ``name`` names.

    Raises:
        EstimatorError: outside ALLOWED_PACKAGES, not installed in this image, unknown, or not an estimator.
    """
    name = name.strip()
    found = _by_dotted_name(name) if "." in name else _by_short_name(name)
    if not _is_estimator_class(found):
        raise EstimatorError(f"estimator {name!r} is not an estimator class (one with fit and predict)")
    estimator_class: type[Any] = found
    return estimator_class


def _by_dotted_name(name: str) -> Any:
    module_name, _, class_name = name.rpartition(".")
    package = module_name.split(".")[0]
    if package not in ALLOWED_PACKAGES:
        raise EstimatorError(
            f"estimator {name!r} is not allowed: it must come from one of {', '.join(ALLOWED_PACKAGES)} "
            "(e.g. sklearn.ensemble.RandomForestClassifier, or the short name RandomForestClassifier)"
        )
    _require_installed(package, name)
    if any(part.startswith("_") for part in [*module_name.split("."), class_name]):
        raise EstimatorError(f"estimator {name!r} is private: name a public module and class")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise EstimatorError(f"estimator {name!r}: there is no module {module_name!r}") from None
    if not hasattr(module, class_name):
        close = difflib.get_close_matches(class_name, [n for n in dir(module) if not n.startswith("_")], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EstimatorError(f"estimator {name!r}: {module_name} has no {class_name!r}{hint}")
    return getattr(module, class_name)


def _by_short_name(name: str) -> Any:
    for package, names in FRAMEWORK_WRAPPERS.items():
        if name in names:
            _require_installed(package, name)
            return getattr(importlib.import_module(package), name)
    from sklearn.utils.discovery import all_estimators

    estimators = dict(all_estimators())
    if name in estimators:
        return estimators[name]
    known = [*estimators, *(n for names in FRAMEWORK_WRAPPERS.values() for n in names)]
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise EstimatorError(
        f"unknown estimator {name!r}: {hint}Name a scikit-learn estimator class (e.g. "
        "RandomForestClassifier, LogisticRegression, Ridge), XGBClassifier/XGBRegressor, "
        "LGBMClassifier/LGBMRegressor, or a dotted name such as sklearn.ensemble.RandomForestClassifier"
    )


def _require_installed(package: str, name: str) -> None:
    if importlib.util.find_spec(package) is None:
        raise EstimatorError(
            f"estimator {name!r} needs {package}, which this image does not have: build it with FLAVOUR=full"
        )


def _is_estimator_class(candidate: Any) -> bool:
    from sklearn.base import BaseEstimator

    return (
        inspect.isclass(candidate)
        and issubclass(candidate, BaseEstimator)
        and callable(getattr(candidate, "fit", None))
        and callable(getattr(candidate, "predict", None))
    )


def build_estimator(estimator_class: type[Any], params: dict[str, Any]) -> Any:
    """``estimator_class(**params)``, after checking every name is one of its parameters.

    Raises:
        EstimatorError: an unknown parameter (the message lists the known ones), or one the class rejects.
    """
    signature = inspect.signature(estimator_class.__init__)
    accepted = [name for name in signature.parameters if name != "self"]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    named = [
        name for name in accepted if signature.parameters[name].kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = [name for name in params if name not in named]
    if unknown and not takes_any:
        raise EstimatorError(
            f"{estimator_class.__name__} has no parameter {', '.join(map(repr, unknown))}; its parameters "
            f"are {', '.join(named)}"
        )
    try:
        return estimator_class(**params)
    except TypeError as error:
        raise EstimatorError(f"{estimator_class.__name__} cannot be made with {params}: {error}") from None


def default_metric(estimator: Any) -> str | None:
    """What ``estimator.score`` reports: accuracy for a classifier, r2 for a regressor, else none."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "accuracy"
    if is_regressor(estimator):
        return "r2"
    return None


def resolve_metric(name: str) -> Callable[[Any, Any, Any], float]:
    """A function ``(estimator, features, target) -> score`` for ``name``: a scikit-learn scorer name
    (``accuracy``, ``f1_macro``, ``neg_root_mean_squared_error``) or a function of ``sklearn.metrics`` that
    takes ``(y_true, y_pred)`` (``accuracy_score``, ``mean_absolute_error``).

    Raises:
        EstimatorError: neither; the message lists some of the scorer names.
    """
    import sklearn.metrics

    scorers = sklearn.metrics.get_scorer_names()
    if name in scorers:
        scorer = sklearn.metrics.get_scorer(name)
        return lambda estimator, features, target: float(scorer(estimator, features, target))
    function = getattr(sklearn.metrics, name, None)
    if not name.startswith("_") and name.endswith(("_score", "_error", "_loss")) and callable(function):
        return lambda estimator, features, target: float(function(target, estimator.predict(features)))
    close = difflib.get_close_matches(name, scorers, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise EstimatorError(
        f"unknown metric {name!r}: {hint}use a scikit-learn scorer name (e.g. accuracy, f1_macro, r2, "
        "neg_mean_squared_error) or a sklearn.metrics function such as accuracy_score or mean_absolute_error"
    )
