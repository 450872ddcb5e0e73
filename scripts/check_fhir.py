#!/usr/bin/env python3
"""Validate a FHIR Bundle that Casebook exported, with whichever fhir.resources is installed.

    check_fhir.py FILE.json

Tries the R4B models of fhir.resources 7.x/8.x first (fhir.resources.R4B.bundle.Bundle, pydantic 2), else the
top-level models of the 6.x line (fhir.resources.bundle.Bundle, pydantic 1): 6.4.0 is FHIR R4 (4.0.1), 6.5.0 is
already R4B (4.3.0), so pin fhir.resources==6.4.0 for exact R4. Prints the model line used and the resources per type;
exits 1 with the error when the models refuse the file, or on what the models do not check: a fullUrl repeated, a
urn:uuid reference that names no entry of the bundle, a status-like code outside its required value set. Exits 2 on a
usage error.
"""

import collections
import json
import sys


def bundle_model():
    """(Bundle class, description) of the installed fhir.resources."""
    try:
        from fhir.resources.R4B import __fhir_version__ as version
        from fhir.resources.R4B.bundle import Bundle

        import fhir.resources

        return Bundle, f"fhir.resources {fhir.resources.__version__}, R4B models (FHIR {version})"
    except ImportError:
        pass
    import fhir.resources
    from fhir.resources.bundle import Bundle

    version = getattr(fhir.resources, "__fhir_version__", "unknown")
    return Bundle, f"fhir.resources {fhir.resources.__version__}, top-level models (FHIR {version})"


def parse(bundle_class, text):
    if hasattr(bundle_class, "model_validate_json"):  # pydantic 2
        return bundle_class.model_validate_json(text)
    return bundle_class.parse_raw(text)  # pydantic 1


def references(value):
    """Every Reference.reference string in a JSON value."""
    if isinstance(value, dict):
        if isinstance(value.get("reference"), str):
            yield value["reference"]
        for item in value.values():
            yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


# Codes of the required bindings on the elements Casebook writes, which the models leave unchecked: FHIR R4 (4.0.1)
# value sets, http://hl7.org/fhir/R4/valueset-<name>.html for bundle-type, observation-status,
# medication-admin-status, research-study-status, research-subject-status, adverse-event-actuality,
# administrative-gender; the same codes in R4B.
REQUIRED_CODES = {
    ("Bundle", "type"): {
        "document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection",
    },
    ("Observation", "status"): {
        "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown",
    },
    ("MedicationAdministration", "status"): {
        "in-progress", "not-done", "on-hold", "completed", "entered-in-error", "stopped", "unknown",
    },
    ("ResearchStudy", "status"): {
        "active", "administratively-completed", "approved", "closed-to-accrual", "closed-to-accrual-and-intervention", "completed",
        "disapproved", "in-review", "temporarily-closed-to-accrual", "temporarily-closed-to-accrual-and-intervention", "withdrawn",
    },
    ("ResearchSubject", "status"): {
        "candidate", "eligible", "follow-up", "ineligible", "not-registered", "off-study", "on-study", "on-study-intervention",
        "on-study-observation", "pending-on-study", "potential-candidate", "screening", "withdrawn",
    },
    ("AdverseEvent", "actuality"): {"actual", "potential"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}


def code_problems(resource, where):
    kind = resource.get("resourceType")
    for (resource_type, element), codes in REQUIRED_CODES.items():
        if kind == resource_type and element in resource and resource[element] not in codes:
            yield f"{where}: {resource_type}.{element} '{resource[element]}' is not a code of its required value set"


def check(path):
    """Problems found (empty when the bundle is valid), the model description and the counts per resource type."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    bundle_class, model = bundle_model()
    try:
        parse(bundle_class, text)
    except Exception as error:  # the models raise pydantic's ValidationError, or ValueError for bad JSON
        return [f"{type(error).__name__}: {error}"], model, {}
    raw = json.loads(text)
    entries = raw.get("entry") or []
    counts = collections.Counter(entry.get("resource", {}).get("resourceType", "?") for entry in entries)
    problems = []
    urls = [entry.get("fullUrl") for entry in entries]
    for url, times in collections.Counter(urls).items():
        if times > 1:
            problems.append(f"fullUrl {url} appears {times} times")
    known = set(urls)
    problems.extend(code_problems(raw, "the bundle"))
    for entry in entries:
        problems.extend(code_problems(entry.get("resource", {}), entry.get("fullUrl")))
        for ref in references(entry.get("resource", {})):
            # Only references that must resolve inside the bundle: urn:uuid (http://hl7.org/fhir/R4/bundle.html#references).
            if ref.startswith("urn:uuid:") and ref not in known:
                problems.append(f"{entry.get('fullUrl')}: reference {ref} names no entry of the bundle")
    return problems, model, counts


def main(argv):
    if len(argv) != 2:
        print("usage: check_fhir.py FILE.json", file=sys.stderr)
        return 2
    try:
        problems, model, counts = check(argv[1])
    except (OSError, UnicodeDecodeError) as error:
        print(f"{argv[1]}: {error}", file=sys.stderr)
        return 1
    except ImportError as error:
        print(f"fhir.resources is not installed here: {error}", file=sys.stderr)
        return 1
    print(model)
    if problems:
        print(f"{argv[1]}: INVALID", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"{argv[1]}: valid Bundle, {sum(counts.values())} resources")
    for resource_type, count in sorted(counts.items()):
        print(f"  {resource_type}: {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
