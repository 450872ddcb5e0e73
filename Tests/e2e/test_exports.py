"""`casebook export fhir` and `casebook export odm` on the demo trials of both studies, read back by others' tools
(fhir.resources with its R4B models; lxml against the CDISC ODM 1.3.2 schema, and odmlib) and compared with the
database: every participant, lab result, dose and adverse event is there, and the blinded forms name no arm."""
import json
import os
import subprocess
import sys
import unittest

from harness import Casebook, databases

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def fhir_resources_python():
    """The Python with fhir.resources: .venv's (as .ci/run installs it), or the one running the tests."""
    for python in (os.path.join(ROOT, ".venv", "bin", "python"), sys.executable):
        if os.path.exists(python) and subprocess.run([python, "-c", "import fhir.resources"], capture_output=True).returncode == 0:
            return python
    return None


def scalar(casebook, sql):
    rows = casebook.sql(sql)
    if casebook.database == "postgres":
        return int(rows.strip().splitlines()[0])
    return rows[0][0]


def python_with(module):
    for python in (os.path.join(ROOT, ".venv", "bin", "python"), sys.executable):
        if os.path.exists(python) and subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return python
    return None


SCHEMA = os.path.join(ROOT, "..", "shared", "reference", "xsd", "odm-1.3.2", "ODM1-3-2.xsd")


class ODMExport(unittest.TestCase):
    def test_both_studies_export_and_validate(self):
        if not os.path.exists(SCHEMA):
            self.skipTest(f"the ODM 1.3.2 schema is not at {SCHEMA} (../shared/reference beside the checkout)")
        python = python_with("lxml")
        if python is None:
            if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                self.fail("lxml is not installed (see .ci/run)")
            self.skipTest("lxml is not installed: pip install lxml odmlib")
        for database in databases():
            for study in (None, "studies/ucmsc-aclf.yaml"):
                with self.subTest(database=database, study=study or "built-in"):
                    casebook = Casebook(database)
                    try:
                        if study:
                            casebook.cli("study", "init", os.path.join(ROOT, study))
                        casebook.cli("demo", "--participants", "25", "--seed", "7")
                        for blinded in (False, True):
                            out = os.path.join(casebook.dir.name, f"odm-{blinded}.xml")
                            casebook.cli("export", "odm", "--output", out, *(["--blinded"] if blinded else []))
                            checked = subprocess.run([python, os.path.join(ROOT, "scripts", "check_odm.py"), out], capture_output=True, text=True)
                            self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
                            if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                                self.assertIn("odmlib", checked.stdout)
                            with open(out) as f:
                                text = f.read()
                            self.assertEqual(text.count("<SubjectData "), scalar(casebook, "SELECT COUNT(*) FROM participants"))
                            self.assertEqual(text.count('<ItemData ItemOID="CB.I.LBTESTCD"'), scalar(casebook, "SELECT COUNT(*) FROM lab_results"))
                            arms = text.count('<ItemData ItemOID="CB.I.ARMCD"')
                            self.assertEqual(arms, 0 if blinded else scalar(casebook, "SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL"))
                            self.assertGreater(text.count("<AuditRecord"), 0)
                    finally:
                        casebook.stop()


class FHIRExport(unittest.TestCase):
    def test_both_studies_export_and_validate(self):
        python = fhir_resources_python()
        if python is None:
            if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                self.fail("fhir.resources is not installed (see .ci/run)")
            self.skipTest("fhir.resources is not installed: pip install 'fhir.resources>=8,<9'")
        for database in databases():
            for study in (None, "studies/ucmsc-aclf.yaml"):
                with self.subTest(database=database, study=study or "built-in"):
                    self.export(database, study, python)

    def export(self, database, study, python):
        casebook = Casebook(database)
        try:
            if study:
                casebook.cli("study", "init", os.path.join(ROOT, study))
            casebook.cli("demo", "--participants", "25", "--seed", "7")
            for blinded in (False, True):
                out = os.path.join(casebook.dir.name, f"bundle-{blinded}.json")
                casebook.cli("export", "fhir", "--output", out, *(["--blinded"] if blinded else []))
                checked = subprocess.run([python, os.path.join(ROOT, "scripts", "check_fhir.py"), out], capture_output=True, text=True)
                self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
                with open(out) as f:
                    bundle = json.load(f)
                kinds = {}
                for entry in bundle["entry"]:
                    kinds.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
                self.assertEqual(len(kinds["Patient"]), scalar(casebook, "SELECT COUNT(*) FROM participants"))
                self.assertEqual(len(kinds["ResearchSubject"]), len(kinds["Patient"]))
                self.assertEqual(len(kinds.get("Observation", [])), scalar(casebook, "SELECT COUNT(*) FROM lab_results"))
                self.assertEqual(len(kinds.get("MedicationAdministration", [])), scalar(casebook, "SELECT COUNT(*) FROM doses"))
                self.assertEqual(len(kinds.get("AdverseEvent", [])), scalar(casebook, "SELECT COUNT(*) FROM adverse_events"))
                # Pseudonymous: a Patient carries no name and at most a birth year.
                for patient in kinds["Patient"]:
                    self.assertNotIn("name", patient)
                    self.assertLessEqual(len(patient.get("birthDate", "")), 4)
                arms = [s for s in kinds["ResearchSubject"] if "assignedArm" in s]
                if blinded:
                    self.assertEqual(arms, [])
                    self.assertNotIn("arm", kinds["ResearchStudy"][0])
                else:
                    self.assertEqual(len(arms), scalar(casebook, "SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL"))
            # Nothing is left beside the files written.
            self.assertEqual(sorted(f for f in os.listdir(casebook.dir.name) if f.endswith(".partial")), [])
        finally:
            casebook.stop()


if __name__ == "__main__":
    unittest.main()
