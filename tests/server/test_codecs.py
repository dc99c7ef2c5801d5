"""Decoding, encoding and Accept negotiation, below HTTP: the edge cases the contract suite does not reach."""

from __future__ import annotations

import io

import numpy as np
import orjson
import pytest
from sklearn_server import codecs
from sklearn_server.app import negotiate
from sklearn_server.errors import BadRequestError, NotAcceptableError, UnsupportedMediaTypeError


def test_csv_with_windows_line_endings_and_a_trailing_newline_is_read() -> None:
    rows = codecs.decode_csv(b"1,2\r\n3,4\r\n")

    assert rows.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_a_blank_csv_line_between_rows_is_a_400_naming_it() -> None:
    with pytest.raises(BadRequestError, match="CSV row 2 is empty"):
        codecs.decode_csv(b"1,2\n\n3,4")


def test_an_empty_csv_cell_is_a_400_naming_it() -> None:
    with pytest.raises(BadRequestError, match="CSV row 1, column 2 is not a number"):
        codecs.decode_csv(b"1,,3")


SMALL = 1
LARGE = codecs.LOADTXT_BYTES // 16 + 1
"""Row counts of 16-byte rows on either side of the size where numpy's C reader takes over."""


@pytest.mark.parametrize("rows", [SMALL, LARGE], ids=["python-parser", "numpy-parser"])
def test_both_csv_parsers_read_the_same_numbers(rows: int) -> None:
    body = b"5.1,3.5,1.4,0.2\n" * rows + b"-1e3, nan ,inf,7\n"

    decoded = codecs.decode_csv(body)

    assert decoded.shape == (rows + 1, 4)
    assert decoded[0].tolist() == [5.1, 3.5, 1.4, 0.2]
    assert decoded[-1, 0] == -1000.0
    assert np.isnan(decoded[-1, 1])


@pytest.mark.parametrize("rows", [SMALL, LARGE], ids=["python-parser", "numpy-parser"])
@pytest.mark.parametrize(
    ("last_row", "message"),
    [
        (b"5_1,3.5,1.4,0.2", "column 1 is not a number: '5_1'"),
        (b"5.1,x,1.4,0.2", "column 2 is not a number: 'x'"),
        (b"5.1,3.5,1.4", "has 3 values, row 1 has 4"),
        (b"", "is empty"),
    ],
    ids=["underscore", "word", "short-row", "blank-row"],
)
def test_both_csv_parsers_name_the_same_bad_row(rows: int, last_row: bytes, message: str) -> None:
    body = b"5.1,3.5,1.4,0.2\n" * rows + last_row + b"\n5.1,3.5,1.4,0.2"

    with pytest.raises(BadRequestError, match=f"CSV row {rows + 1}.*{message}"):
        codecs.decode_csv(body)


def test_a_csv_body_of_the_wrong_width_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(BadRequestError, match=r"^expected 4 features, got 1$"):
        codecs.decode_csv(b"1\nnot even a number\n" * 1000, 4)


def test_a_json_row_of_the_wrong_width_is_refused_before_the_array_is_made() -> None:
    with pytest.raises(BadRequestError, match=r"^expected 4 features, got 2$"):
        codecs.decode_json(b"[[1, 2], [3, 4]]", 4)


def test_a_npy_header_with_a_negative_dimension_is_a_400() -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (-1, -4)})

    with pytest.raises(BadRequestError, match=r"negative dimension: shape \(-1, -4\)"):
        codecs.decode_npy(buffer.getvalue() + bytes(32))


def test_csv_labels_holding_commas_or_quotes_are_quoted() -> None:
    encoded = codecs.encode_csv(np.array(["a,b", 'say "hi"', "plain"], dtype=object))

    assert encoded == b'"a,b"\n"say ""hi"""\nplain\n'


def test_csv_probability_rows_are_comma_joined() -> None:
    assert codecs.encode_csv(np.array([[0.25, 0.75], [1.0, 0.0]])) == b"0.25,0.75\n1.0,0.0\n"


def test_json_integers_beyond_a_float_are_a_400() -> None:
    with pytest.raises(BadRequestError):
        codecs.decode_json(b"[[" + b"9" * 400 + b"]]")


def test_json_booleans_are_not_numbers() -> None:
    with pytest.raises(BadRequestError, match=r"\[0\]\[1\] must be a number, got a boolean"):
        codecs.decode_json(b"[[1, true]]")


def test_json_encoding_is_the_same_for_small_and_large_arrays() -> None:
    small = np.arange(3, dtype=np.int64)
    large = np.arange(1000, dtype=np.float64).reshape(500, 2)

    assert orjson.loads(codecs.encode_json(small)) == [0, 1, 2]
    assert orjson.loads(codecs.encode_json(large)) == large.tolist()
    assert orjson.loads(codecs.encode_json_predictions(small)) == {"predictions": [0, 1, 2]}
    assert orjson.loads(codecs.encode_json_predictions(large)) == {"predictions": large.tolist()}


def test_a_fortran_ordered_npy_array_keeps_its_rows() -> None:
    array = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    buffer = io.BytesIO()
    np.save(buffer, array)

    assert codecs.decode_npy(buffer.getvalue()).tolist() == array.tolist()


def test_npy_output_of_object_labels_is_a_unicode_array() -> None:
    encoded = codecs.encode_npy(np.array(["setosa", "virginica"], dtype=object))

    decoded = np.load(io.BytesIO(encoded), allow_pickle=False)
    assert decoded.dtype.kind == "U"
    assert decoded.tolist() == ["setosa", "virginica"]


def test_an_unknown_media_type_is_a_domain_error_both_ways() -> None:
    with pytest.raises(
        UnsupportedMediaTypeError,
        match="supported: text/csv, application/json, application/jsonlines, application/x-npy, "
        "application/x-npz",
    ):
        codecs.decoder_for("text/plain")
    with pytest.raises(NotAcceptableError):
        codecs.encoder_for("text/plain")


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (b"", "application/json"),
        (b"*/*", "application/json"),
        (b"text/csv, application/json", "text/csv"),
        (b"application/json;q=0.2, text/csv;q=0.8", "text/csv"),
        (b"text/*;q=0.3, */*;q=0.5", "application/json"),
        (b"text/csv;q=0, */*", "application/json"),
        (b"application/*", "application/json"),
        (b"application/x-npy, */*;q=0.1", "application/x-npy"),
        (b"text/html, text/plain;q=0.5", None),
        (b"text/csv;q=0", None),
        (b"text/csv;q=oops", None),
    ],
)
def test_accept_negotiation(accept: bytes, chosen: str | None) -> None:
    assert negotiate(accept, "application/json") == chosen
