"""``ml-inference-pack``: a saved model into model.tar.gz, with an ONNX copy verified on a sample if asked.

::

    ml-inference-pack model.joblib --sample sample.csv --compile onnx --output model.tar.gz

MODEL is a ``.joblib`` file (unpickled: load only files you made or trust) or a ``.skops`` file (loaded
trusting only scikit-learn, NumPy, SciPy, XGBoost and LightGBM types; any other type is refused, by name).
The sample is a CSV of numbers, one row per line (a first line that is not numbers is a header), or a
``.npy`` array. The archive is written either way; one line says whether model.onnx joined it:

    compiled: model.onnx verified on 150 rows (labels identical; max |Δ| probabilities 2.5e-07)
    not compiled: <reason>; the archive serves model.joblib

Exit status: 0 when the archive is written (a refusal to compile is an outcome, not an error); 2 for bad
arguments or unreadable files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

MODEL_SUFFIXES: Final = (".joblib", ".skops")
TRUSTED_SKOPS_MODULES: Final = frozenset({"sklearn", "numpy", "scipy", "xgboost", "lightgbm"})
"""A .skops file is loaded only if every type it holds comes from these libraries (or is an OrderedDict,
which LightGBM's estimators hold)."""
_TRUSTED_SKOPS_TYPES: Final = frozenset({"collections.OrderedDict"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-inference-pack",
        description=(
            "Pack a saved model into model.tar.gz for ml-inference-cdk; with --compile onnx, add an ONNX "
            "copy for the server to run with ONNX Runtime, if it predicts what the model does on --sample."
        ),
    )
    parser.add_argument(
        "model", type=Path, metavar="MODEL", help="the fitted model: a .joblib or .skops file"
    )
    parser.add_argument("--output", required=True, type=Path, help="the archive to write (ends with .tar.gz)")
    parser.add_argument(
        "--serialization",
        choices=("joblib", "skops"),
        help="how the archive stores the model (default: MODEL's own format)",
    )
    parser.add_argument(
        "--compile", choices=("onnx",), help="convert to ONNX and verify it on --sample (default: no)"
    )
    parser.add_argument(
        "--sample",
        type=Path,
        help="with --compile: the rows to verify on: a .csv of numbers (header optional) or a .npy array",
    )
    parser.add_argument(
        "--rtol",
        type=float,
        help="with --compile: relative tolerance of probabilities and regression outputs (default: 1e-5)",
    )
    parser.add_argument(
        "--atol",
        type=float,
        help="with --compile: absolute tolerance of probabilities and regression outputs (default: 1e-6)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.compile is None:
        given = [
            flag
            for flag, value in (("--sample", args.sample), ("--rtol", args.rtol), ("--atol", args.atol))
            if value is not None
        ]
        if given:
            parser.error(f"{', '.join(given)} only apply with --compile onnx")
    elif args.sample is None:
        parser.error("--compile onnx needs --sample: the rows to verify the ONNX copy on")
    try:
        return _pack(args)
    except (ValueError, ImportError) as error:
        parser.error(str(error))


def _pack(args: argparse.Namespace) -> int:
    from ml_inference_cdk.compiling import Tolerance, describe
    from ml_inference_cdk.compiling.samples import read_sample
    from ml_inference_cdk.constructs.packing import pack_model, packed_metadata

    estimator = load_model(args.model)
    serialization = args.serialization or args.model.suffix.lstrip(".")
    compiled = args.compile is not None
    tolerance = None
    if compiled and (args.rtol is not None or args.atol is not None):
        default = Tolerance()
        tolerance = Tolerance(
            rtol=default.rtol if args.rtol is None else args.rtol,
            atol=default.atol if args.atol is None else args.atol,
        )
    sample = read_sample(args.sample) if compiled else None
    output = pack_model(
        estimator,
        args.output,
        serialization=serialization,
        compile=args.compile,
        sample=sample,
        tolerance=tolerance,
    )
    if compiled:
        print(describe(packed_metadata(output)["compiled"]))
    print(f"wrote {output}")
    return 0


def load_model(path: Path) -> Any:
    """The estimator saved in ``path`` (.joblib, or .skops with only trusted library types).

    Raises:
        ValueError: the file is missing, of another kind, holds untrusted types, or does not load.
    """
    if path.suffix not in MODEL_SUFFIXES:
        raise ValueError(f"MODEL must be a .joblib or .skops file, got {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"MODEL: no such file {str(path)!r}")
    try:
        if path.suffix == ".skops":
            return _load_skops(path)
        import joblib

        return joblib.load(path)
    except ValueError:
        raise
    except Exception as error:  # unpickling raises whatever the pickled classes raise
        raise ValueError(f"MODEL {str(path)!r} does not load: {type(error).__name__}: {error}") from error


def _load_skops(path: Path) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [
        name
        for name in untrusted
        if name.split(".")[0] not in TRUSTED_SKOPS_MODULES and name not in _TRUSTED_SKOPS_TYPES
    ]
    if refused:
        raise ValueError(
            f"MODEL {str(path)!r} holds types from outside scikit-learn, NumPy, SciPy, XGBoost and LightGBM, "
            f"which this command does not load: {', '.join(refused)}"
        )
    return skops.io.load(path, trusted=untrusted)


if __name__ == "__main__":
    sys.exit(main())
