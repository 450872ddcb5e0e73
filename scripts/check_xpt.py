#!/usr/bin/env python3
"""Reads every .xpt file in a folder with pyreadstat, a reader independent of Casebook's, and checks it.

    check_xpt.py DIR [--expect EXPECTED.json]

Without --expect each file must merely be readable. EXPECTED.json maps a file name to what it should hold:

    {"ae.xpt": {"rows": 2, "label": "Adverse Events",
                "columns": {"AESEQ": {"type": "numeric", "label": "Sequence Number"}},
                "values": {"AESEQ": [1, null], "AETERM": ["HEADACHE", ""]}}}

Numbers must match exactly: every double within IBM range survives the transport format unchanged. null is the
missing value "."; a special missing value is written as ".A" and so on, which pyreadstat's read_xport reads as a
plain missing value, so it is checked as one. Character values compare with trailing blanks removed.

pyreadstat is not installed by this script: use a virtual environment (python3 -m venv /tmp/v && /tmp/v/bin/pip
install pyreadstat). Exits 0 when all files pass, 1 when any fails, 2 on bad usage.
"""
import argparse
import json
import math
import pathlib
import sys


def problems(path, expected, pyreadstat):
    try:
        frame, meta = pyreadstat.read_xport(str(path), disable_datetime_conversion=True)
    except Exception as error:  # pyreadstat raises its own types for unreadable files
        return [f"unreadable: {error}"]
    if expected is None:
        return []
    found = []
    if "rows" in expected and len(frame) != expected["rows"]:
        found.append(f"{len(frame)} rows, expected {expected['rows']}")
    if "label" in expected and (meta.file_label or "") != expected["label"]:
        found.append(f"dataset label {meta.file_label!r}, expected {expected['label']!r}")
    labels = meta.column_names_to_labels
    for name, column in expected.get("columns", {}).items():
        if name not in frame.columns:
            found.append(f"{name}: no such column")
            continue
        if "label" in column and (labels.get(name) or "") != column["label"]:
            found.append(f"{name}: label {labels.get(name)!r}, expected {column['label']!r}")
        if "type" in column:
            numeric = frame[name].dtype.kind in "fi"
            if numeric != (column["type"] == "numeric"):
                found.append(f"{name}: read as {frame[name].dtype}, expected {column['type']}")
    for name, values in expected.get("values", {}).items():
        if name not in frame.columns:
            found.append(f"{name}: no such column")
            continue
        actual = list(frame[name])
        if len(actual) != len(values):
            found.append(f"{name}: {len(actual)} values, expected {len(values)}")
            continue
        for record, (got, want) in enumerate(zip(actual, values), start=1):
            if not same(got, want):
                found.append(f"{name} record {record}: {got!r}, expected {want!r}")
    return found


def same(got, want):
    missing = want is None or (isinstance(want, str) and want.startswith(".") and len(want) <= 2)
    if isinstance(got, float) and math.isnan(got):
        return missing
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        return isinstance(got, (int, float)) and float(got) == float(want)
    if isinstance(want, str) and not missing:
        return isinstance(got, str) and got.rstrip(" ") == want.rstrip(" ")
    return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--expect", type=pathlib.Path, help="JSON of expected contents per file name")
    args = parser.parse_args()
    try:
        import pyreadstat
    except ImportError:
        print("check_xpt.py needs pyreadstat: python3 -m venv /tmp/v && /tmp/v/bin/pip install pyreadstat", file=sys.stderr)
        return 2
    files = sorted(args.folder.glob("*.xpt"))
    if not files:
        print(f"no .xpt files in {args.folder}", file=sys.stderr)
        return 2
    expectations = json.loads(args.expect.read_text()) if args.expect else {}
    unknown = set(expectations) - {f.name for f in files}
    failed = 0
    for name in sorted(unknown):
        print(f"FAIL {name}: expected but not in {args.folder}")
        failed += 1
    for path in files:
        found = problems(path, expectations.get(path.name) if args.expect else None, pyreadstat)
        print(("FAIL " if found else "ok   ") + path.name)
        for problem in found:
            print(f"     {problem}")
        failed += bool(found)
    print(f"{len(files) + len(unknown) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
