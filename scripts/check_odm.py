#!/usr/bin/env python3
"""Validate a CDISC ODM 1.3.2 document that Casebook exported.

    check_odm.py FILE.xml

Validates FILE against the ODM 1.3.2 schema, ../shared/reference/xsd/odm-1.3.2/ODM1-3-2.xsd relative to the
repository root (or the schema named by CASEBOOK_ODM_XSD), with lxml. When odmlib is installed it then loads the file
with odmlib's ODM 1.3.2 model and runs its checks: child order, OID uniqueness across the document, and that every
OID reference names an element of the right kind. Prints what was checked; exits 1 with the first errors when a check
fails, 2 on a usage error or when lxml or the schema is missing.
"""

import os
import sys

MAX_ERRORS = 10


def schema_path():
    if os.environ.get("CASEBOOK_ODM_XSD"):
        return os.environ["CASEBOOK_ODM_XSD"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, "..", "shared", "reference", "xsd", "odm-1.3.2", "ODM1-3-2.xsd")


def validate_xsd(path, xsd):
    """Errors from lxml's XML Schema validation, at most MAX_ERRORS."""
    from lxml import etree

    schema = etree.XMLSchema(etree.parse(xsd))
    # No network and no entity expansion: the file is data.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    try:
        document = etree.parse(path, parser)
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:MAX_ERRORS]]


def check_odmlib(path):
    """(description, errors) from odmlib's loader and checks; None when odmlib is not installed."""
    try:
        import odmlib
        from odmlib import loader as LO
        from odmlib import odm_loader as OL
    except ImportError:
        return None
    version = getattr(odmlib, "__version__", "unknown version")
    loader = LO.ODMLoader(OL.XMLODMLoader(model_package="odm_1_3_2", ns_uri="http://www.cdisc.org/ns/odm/v1.3"))
    try:
        loader.open_odm_document(path)
        odm = loader.load_odm()
    except Exception as error:  # odmlib raises its own and ElementTree's errors
        return f"odmlib {version}", [f"load: {error}"]
    try:
        from odmlib.oid_generator import create_oid_checker

        checker = create_oid_checker("odm_1_3_2")
    except ImportError:  # odmlib before 0.2
        from odmlib.odm_1_3_2.rules.oid_ref import OIDRef

        checker = OIDRef()
    errors = []
    if hasattr(odm, "validate"):
        found = odm.validate(collect_errors=True, oid_checker=checker, max_errors=MAX_ERRORS)
        errors = [str(e) for e in found]
    else:
        try:
            odm.verify_order()
            odm.verify_oids(checker)
        except Exception as error:
            errors = [str(error)]
    return f"odmlib {version} (order, OID uniqueness and references)", errors


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = argv[1]
    if not os.path.isfile(path):
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    xsd = schema_path()
    if not os.path.isfile(xsd):
        print(f"the ODM 1.3.2 schema is missing: {xsd}", file=sys.stderr)
        return 2
    try:
        import lxml  # noqa: F401
    except ImportError:
        print("lxml is not installed (pip install lxml)", file=sys.stderr)
        return 2

    failed = False
    errors = validate_xsd(path, xsd)
    if errors:
        failed = True
        print(f"{path}: NOT valid against {os.path.normpath(xsd)}")
        for error in errors:
            print(f"  {error}")
    else:
        print(f"{path}: valid against {os.path.normpath(xsd)}")

    result = check_odmlib(path)
    if result is None:
        print("odmlib is not installed: its checks were skipped")
    else:
        description, errors = result
        if errors:
            failed = True
            print(f"{path}: {description}: {len(errors)} problem(s)")
            for error in errors[:MAX_ERRORS]:
                print(f"  {error}")
        else:
            print(f"{path}: {description}: no problems")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
