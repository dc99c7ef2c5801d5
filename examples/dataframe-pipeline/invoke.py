"""Ask a running server for predictions in each request shape it accepts for a DataFrame model.

    python invoke.py --url http://127.0.0.1:8080

Prints one line per request: the shape, the HTTP status and the answer. Uses only the standard library
(http.client), as any client could.
"""

from __future__ import annotations

import argparse
import http.client
import json
from urllib.parse import urlsplit

COLUMNS = ["city", "plan", "age", "income"]
ROWS = [["rome", "plus", 35, 2.25], ["oslo", "pro", 47, None]]  # null: a missing value (imputed)

REQUESTS = {
    "dataframe_split": (
        "application/json",
        json.dumps({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}),
    ),
    "dataframe_records": (
        "application/json",
        json.dumps({"dataframe_records": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]}),
    ),
    "instances": ("application/json", json.dumps({"instances": ROWS})),
    "inputs": (
        "application/json",
        json.dumps({"inputs": {name: [row[i] for row in ROWS] for i, name in enumerate(COLUMNS)}}),
    ),
    "csv with a header": ("text/csv", "income,age,plan,city\n2.25,35,plus,rome\n,47,pro,oslo\n"),
    "an unknown column": (
        "application/json",
        json.dumps([{"city": "rome", "plan": "plus", "age": 35, "salary": 2}]),
    ),
    "text in a number column": (
        "application/json",
        json.dumps([{"city": "rome", "plan": "plus", "age": "old", "income": 2}]),
    ),
}


def post(url: str, content_type: str, body: str) -> tuple[int, object]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=30)
    try:
        connection.request("POST", "/invocations", body.encode(), {"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    args = parser.parse_args()
    for shape, (content_type, body) in REQUESTS.items():
        status, answer = post(args.url, content_type, body)
        print(json.dumps({"shape": shape, "status": status, "answer": answer}))


if __name__ == "__main__":
    main()
