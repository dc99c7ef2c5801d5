"""Decoding, encoding and Accept negotiation, below HTTP: the edge cases the contract suite does not reach."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import orjson
import pytest
import scipy.sparse
from sklearn_server import codecs
from sklearn_server.app import first_media_type, negotiate
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


# --- the AWS wire format ----------------------------------------------------------------------------------


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_json_strings_holding_numbers_are_numbers_and_null_is_nan() -> None:
    decoded = codecs.decode_json(b'[["5.1", " 3.5 ", null, 2]]')

    np.testing.assert_array_equal(decoded, [[5.1, 3.5, np.nan, 2.0]])


@pytest.mark.parametrize("text", ["x", "", "5_1", "1e400x"])
def test_a_json_string_that_is_not_a_number_is_a_400_naming_the_field(text: str) -> None:
    with pytest.raises(BadRequestError, match=r"\[0\]\[1\] must be a number, got a string"):
        codecs.decode_json(orjson.dumps([[1, text]]))


def test_a_flat_json_list_is_one_row_and_checked_against_the_width() -> None:
    assert codecs.decode_json(b"[1, 2, 3]", 3).shape == (1, 3)
    with pytest.raises(BadRequestError, match="expected 4 features, got 3"):
        codecs.decode_json(b"[1, 2, 3]", 4)


def test_json_lines_are_rows() -> None:
    decoded = codecs.decode_jsonlines(b'[1, 2]\n["3", 4]\n')

    np.testing.assert_array_equal(decoded, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[1, 2]\n\n[3, 4]", "JSON line 2 is empty"),
        (b"[1, 2]\n[3, 4", "JSON line 2 is not valid JSON"),
        (b'{"a": 1}', "JSON line 1 must be a list of numbers, got an object"),
        (b"   ", "the JSON lines body is empty"),
        (b"[1, 2]\n[3]", r"line\[1\] has 1 values"),
    ],
)
def test_bad_json_lines_are_a_400_naming_the_line(body: bytes, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        codecs.decode_jsonlines(body)


def test_json_lines_out_is_one_value_per_line() -> None:
    assert codecs.encode_jsonlines(np.array([[0.25, 0.75], [1.0, 0.0]])) == b"[0.25,0.75]\n[1.0,0.0]\n"
    assert codecs.encode_jsonlines(np.array(["a", "b"], dtype=object)) == b'"a"\n"b"\n'


def test_a_dense_npz_with_several_arrays_uses_the_one_named_instances() -> None:
    decoded = codecs.decode_npz(npz(instances=np.ones((2, 3)), weights=np.zeros(3)))

    assert decoded.shape == (2, 3)


def test_a_dense_npz_with_several_unnamed_arrays_is_a_400_listing_them() -> None:
    with pytest.raises(
        BadRequestError, match=r"holds 2 arrays \(a, b\); send one, or name the rows 'instances'"
    ):
        codecs.decode_npz(npz(a=np.ones((1, 2)), b=np.ones((1, 2))))


def test_an_npz_holding_a_pickled_array_is_refused_not_loaded() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, instances=np.array([[object()]], dtype=object))

    with pytest.raises(BadRequestError, match="must hold ints or floats"):
        codecs.decode_npz(buffer.getvalue())


def test_a_sparse_npz_stays_sparse_and_is_checked_against_the_width() -> None:
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.csr_matrix(np.eye(3)))

    decoded = codecs.decode_npz(buffer.getvalue(), 3)

    assert scipy.sparse.issparse(decoded)
    np.testing.assert_array_equal(decoded.toarray(), np.eye(3))
    with pytest.raises(BadRequestError, match="expected 4 features, got 3"):
        codecs.decode_npz(buffer.getvalue(), 4)


def test_a_sparse_npz_with_indices_out_of_range_is_a_400() -> None:
    body = npz(
        format=np.array("csr"),
        shape=np.array([1, 2]),
        data=np.array([1.0]),
        indices=np.array([7]),
        indptr=np.array([0, 1]),
    )

    with pytest.raises(BadRequestError, match="not a valid csr matrix"):
        codecs.decode_npz(body)


@pytest.mark.parametrize("sparse_format", ["csc", "coo", "bsr", "dia"])
def test_every_format_save_npz_writes_is_read_as_csr(sparse_format: str) -> None:
    buffer = io.BytesIO()
    scipy.sparse.save_npz(buffer, scipy.sparse.eye(2, format=sparse_format))

    decoded = codecs.decode_npz(buffer.getvalue())

    assert decoded.format == "csr"
    np.testing.assert_array_equal(decoded.toarray(), np.eye(2))


def test_a_sparse_npz_claiming_a_huge_shape_is_a_400_before_it_is_built() -> None:
    body = npz(
        format=np.array("coo"),
        shape=np.array([10**12, 4]),
        data=np.array([1.0]),
        row=np.array([0]),
        col=np.array([0]),
    )

    with pytest.raises(BadRequestError, match="at most 8388608 rows and columns"):
        codecs.decode_npz(body)


def test_a_sparse_npz_in_an_unknown_format_is_a_400_naming_the_formats_allowed() -> None:
    body = npz(format=np.array("lil"), shape=np.array([1, 2]))

    with pytest.raises(BadRequestError, match=r"csr, csc, coo, bsr, dia"):
        codecs.decode_npz(body)


@pytest.mark.parametrize("body", [b"", b"PK\x03\x04 not really", b"not a zip"])
def test_a_body_that_is_not_an_npz_archive_is_a_400(body: bytes) -> None:
    with pytest.raises(BadRequestError, match=r"not an \.npz archive|is empty"):
        codecs.decode_npz(body)


def test_sparse_and_dense_rows_join_in_order() -> None:
    dense = np.ones((1, 2))
    sparse = scipy.sparse.csr_matrix(np.zeros((2, 2)))

    joined = codecs.join_rows([dense, sparse])

    np.testing.assert_array_equal(joined.toarray(), [[1, 1], [0, 0], [0, 0]])


def test_negotiation_chooses_among_what_the_model_can_write() -> None:
    assert negotiate(b"*/*", "text/csv", ("application/json",)) == "application/json"
    assert negotiate(b"", "text/csv", ("application/json",)) == "application/json"
    assert negotiate(b"text/csv", "application/json", ("application/json",)) is None


def test_user_code_gets_the_first_type_the_client_lists() -> None:
    assert first_media_type(b"Application/Protobuf; q=0.9, text/csv") == "application/protobuf"
    assert first_media_type(b"image/png;q=0, text/csv") == "text/csv"
    assert first_media_type(b"*/*") is None
    assert first_media_type(b"") is None
