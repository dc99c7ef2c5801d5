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

    assert orjson.loads(codecs.encode_json(small)) == {"predictions": [0, 1, 2]}
    assert orjson.loads(codecs.encode_json(large)) == {"predictions": large.tolist()}


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
        UnsupportedMediaTypeError, match="supported: text/csv, application/json, application/x-npy"
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
