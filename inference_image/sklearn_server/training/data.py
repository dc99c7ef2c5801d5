"""A channel's files as one pandas DataFrame: CSV (plain or gzip), and Parquet where pyarrow is installed.

Every file under the channel's folder is read (sorted by path, hidden files skipped, sub-folders included: an
S3 prefix keeps its structure), and the files are stacked; they must have the same columns. The format comes
from the channel's ContentType in inputdataconfig.json when it names one, else from each file's suffix.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import pandas as pd

CSV_TYPES: Final = ("text/csv", "text/x-csv", "application/csv")
PARQUET_TYPES: Final = ("application/x-parquet", "application/parquet", "application/vnd.apache.parquet")
CSV_SUFFIXES: Final = (".csv", ".csv.gz", ".txt")
PARQUET_SUFFIXES: Final = (".parquet", ".pq")


class DataError(ValueError):
    """A channel cannot be read; the message names the channel or file and says what is allowed."""


def read_channel(name: str, folder: Path, config: dict[str, Any], *, header: bool) -> pd.DataFrame:
    """The channel's rows. With ``header`` the first line of each CSV file names the columns; without, the
    columns are numbered from 0 (SageMaker's built-in algorithms read CSV without a header).

    Raises:
        DataError: the folder is missing or holds no data file, Pipe mode, a file of an unknown format,
            Parquet without pyarrow, files whose columns differ, or a file pandas cannot parse.
    """
    import pandas as pd

    if str(config.get("TrainingInputMode", "File")).lower() == "pipe":
        raise DataError(
            f"channel {name!r} uses Pipe mode, which this container does not read: use File or FastFile"
        )
    if not folder.is_dir():
        raise DataError(f"channel {name!r}: no folder {folder}")
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    if not files:
        raise DataError(f"channel {name!r}: {folder} holds no data files")
    content_type = str(config.get("ContentType", "")).split(";")[0].strip().lower()
    frames = [_read_file(path, _format(path, content_type), header=header) for path in files]
    first = frames[0]
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != list(first.columns):
            raise DataError(
                f"channel {name!r}: {path.relative_to(folder)} has the columns {_names(frame.columns)}, but "
                f"{files[0].relative_to(folder)} has {_names(first.columns)}; every file of a channel must "
                "have the same columns"
            )
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else first
    if data.empty:
        raise DataError(f"channel {name!r}: {folder} holds no rows")
    return data


def _format(path: Path, content_type: str) -> str:
    if content_type in CSV_TYPES:
        return "csv"
    if content_type in PARQUET_TYPES:
        return "parquet"
    name = path.name.lower()
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    allowed = ", ".join((*CSV_SUFFIXES, *PARQUET_SUFFIXES))
    raise DataError(
        f"{path}: cannot tell its format: name the channel's ContentType (text/csv or application/x-parquet) "
        f"or use one of the suffixes {allowed}"
    )


def _read_file(path: Path, fmt: str, *, header: bool) -> pd.DataFrame:
    import pandas as pd

    try:
        if fmt == "parquet":
            if importlib.util.find_spec("pyarrow") is None:
                raise DataError(
                    f"{path} is Parquet, which needs pyarrow, and this image has none: send CSV, or build an "
                    "image with pyarrow in its requirements"
                )
            return pd.read_parquet(path)
        return pd.read_csv(path, header=0 if header else None)
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path} cannot be read as {fmt.upper()}: {error}") from None


def _names(columns: Any) -> str:
    listed = [str(column) for column in columns]
    shown = ", ".join(listed[:10])
    return f"[{shown}{', ...' if len(listed) > 10 else ''}]"
