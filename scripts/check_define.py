#!/usr/bin/env python3
"""Validate Define-XML 2.1 documents against CDISC's schemas.

Usage: check_define.py FILE.xml [FILE.xml ...]

The schemas are read from ../shared/reference/xsd/define-2.1 beside the checkout (the reference folder CI has);
DEFINE_XSD names another define2-1-0.xsd. Needs lxml (pip install lxml). Exit 0 when every file is valid, 1 when
any is not (each error printed with its line), 2 when the schema or lxml cannot be had.
"""

import os
import sys
from pathlib import Path


def schema_path() -> Path:
    named = os.environ.get("DEFINE_XSD")
    if named:
        return Path(named)
    checkout = Path(__file__).resolve().parent.parent
    return checkout.parent / "shared" / "reference" / "xsd" / "define-2.1" / "schema" / "cdisc-definexml-2.1.0" / "define2-1-0.xsd"


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        from lxml import etree
    except ImportError:
        print("check_define.py needs lxml: pip install lxml", file=sys.stderr)
        return 2
    xsd = schema_path()
    if not xsd.is_file():
        print(f"Define-XML 2.1 schema not found at {xsd} (set DEFINE_XSD)", file=sys.stderr)
        return 2
    # The schemas import xlink and xml from beside themselves: no network is needed.
    parser = etree.XMLParser(no_network=True)
    schema = etree.XMLSchema(etree.parse(str(xsd), parser))
    failed = 0
    for name in argv[1:]:
        try:
            document = etree.parse(name, parser)
        except (OSError, etree.XMLSyntaxError) as error:
            print(f"{name}: not readable XML: {error}")
            failed += 1
            continue
        if schema.validate(document):
            print(f"{name}: valid Define-XML 2.1")
        else:
            failed += 1
            for error in schema.error_log:
                print(f"{name}:{error.line}: {error.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
