"""`casebook export fhir` and `casebook export odm` on the demo trials of both studies, read back by others' tools
(fhir.resources with its R4B models; lxml against the CDISC ODM 1.3.2 schema, and odmlib) and compared with the
database: every participant, lab result, dose and adverse event is there, and the blinded forms name no arm."""
import json
import os
import shutil
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


class SDTMExport(unittest.TestCase):
    """Every dataset read back by pyreadstat and by R's foreign::read.xport, values compared with the database."""

    def test_both_studies_export_and_read_back(self):
        python = python_with("pyreadstat")
        rscript = shutil.which("Rscript")
        if python is None or rscript is None:
            if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                self.fail("pyreadstat and R's foreign package are needed (see .ci/run)")
            self.skipTest("needs pyreadstat (pip) and R with foreign (apt-get install r-cran-foreign)")
        for database in databases():
            for study in (None, "studies/ucmsc-aclf.yaml"):
                with self.subTest(database=database, study=study or "built-in"):
                    self.export(database, study, python, rscript)

    def export(self, database, study, python, rscript):
        casebook = Casebook(database)
        try:
            if study:
                casebook.cli("study", "init", os.path.join(ROOT, study))
            casebook.cli("demo", "--participants", "25", "--seed", "7")
            code = json.loads(casebook.cli("study", "show", "--json").stdout)["code"]
            for blinded in (False, True):
                out = os.path.join(casebook.dir.name, f"sdtm-{blinded}")
                casebook.cli("export", "sdtm", "--output", out, *(["--blinded"] if blinded else []))
                files = sorted(os.listdir(out))
                self.assertIn("define.xml", files)
                self.assertEqual("ta.xpt" in files, not blinded)
                self.assertEqual("ex.xpt" in files, not blinded)
                self.assertEqual("ec.xpt" in files, blinded)
                checked = subprocess.run([python, os.path.join(ROOT, "scripts", "check_xpt.py"), out], capture_output=True, text=True)
                self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
                if os.path.exists(os.path.join(ROOT, "..", "shared", "reference", "xsd", "define-2.1")):
                    define = subprocess.run([python, os.path.join(ROOT, "scripts", "check_define.py"), os.path.join(out, "define.xml")], capture_output=True, text=True)
                    self.assertEqual(define.returncode, 0, define.stdout + define.stderr)
                # pyreadstat: DM and LB against the database, value by value.
                read = subprocess.run([python, "-c", READ_BACK, out], capture_output=True, text=True)
                self.assertEqual(read.returncode, 0, read.stderr)
                back = json.loads(read.stdout)
                self.assertEqual(back["problems"], [])
                self.assertEqual(len(back["dm"]), scalar(casebook, "SELECT COUNT(*) FROM participants"))
                self.assertEqual(len(set(back["dm"])), len(back["dm"]), "USUBJID unique")
                self.assertEqual("ARMCD" in back["dm_columns"], not blinded)
                rows = casebook.sql(
                    "SELECT s.code, p.screening_number, l.test_code, l.entered_value FROM lab_results l JOIN participants p ON p.id = l.participant_id "
                    "JOIN sites s ON s.id = p.site_id")
                if database == "postgres":
                    rows = [line.split("|") for line in rows.strip().splitlines()]
                expected = sorted((f"{code}-{site}-{number}", test, float(value)) for site, number, test, value in rows)
                got = sorted((u, t, float(v)) for u, t, v in back["lb"])
                self.assertEqual(len(got), len(expected))
                for (eu, et, ev), (gu, gt, gv) in zip(expected, got):
                    self.assertEqual((eu, et), (gu, gt))
                    self.assertAlmostEqual(ev, gv, places=6)
                # R's foreign reads every file with the same number of records.
                for name in files:
                    if not name.endswith(".xpt"):
                        continue
                    r = subprocess.run([rscript, "-e", f'x <- foreign::read.xport("{os.path.join(out, name)}"); cat(nrow(x))'], capture_output=True, text=True)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(int(r.stdout.strip().split()[-1]), back["rows"][name], name)
        finally:
            casebook.stop()


READ_BACK = """
import json, math, os, sys, pyreadstat
out = sys.argv[1]
rows = {}
for name in sorted(os.listdir(out)):
    if name.endswith(".xpt"):
        frame, meta = pyreadstat.read_xport(os.path.join(out, name))
        rows[name] = len(frame)
dm, meta = pyreadstat.read_xport(os.path.join(out, "dm.xpt"))
lb, _ = pyreadstat.read_xport(os.path.join(out, "lb.xpt"))
ae, _ = pyreadstat.read_xport(os.path.join(out, "ae.xpt"))
ts, _ = pyreadstat.read_xport(os.path.join(out, "ts.xpt"))
problems = []
# Checks in the spirit of the CDISC CORE rules for these domains.
if len(set(dm["USUBJID"])) != len(dm):
    problems.append("DM: USUBJID not unique")
for start, end in zip(ae["AESTDTC"], ae["AEENDTC"]):
    if start and end and end[:len(start)] < start[:len(end)]:
        problems.append(f"AE: AEENDTC {end} before AESTDTC {start}")
for c, n in zip(lb["LBSTRESC"], lb["LBSTRESN"]):
    try:
        number = float(c)
    except ValueError:
        continue
    if n is None or (isinstance(n, float) and math.isnan(n)) or abs(float(n) - number) > 1e-9 * max(1, abs(number)):
        problems.append(f"LB: LBSTRESC {c} but LBSTRESN {n}")
for name, frame in (("DM", dm), ("LB", lb), ("AE", ae)):
    for u in frame["USUBJID"]:
        if u not in set(dm["USUBJID"]):
            problems.append(f"{name}: USUBJID {u} not in DM")
present = set(ts["TSPARMCD"])
# FDA's Study Data Technical Conformance Guide: parameters every TS carries (with a value or a null flavour).
for parm in ["SSTDTC", "SDTIGVER", "TITLE", "TPHASE", "SPONSOR", "REGID", "PLANSUB", "TBLIND", "RANDOM", "AGEMIN", "AGEMAX", "SEXPOP"]:
    if parm not in present:
        problems.append(f"TS: {parm} missing")
for value, flavour, parm in zip(ts["TSVAL"], ts["TSVALNF"], ts["TSPARMCD"]):
    if bool(value) == bool(flavour):
        problems.append(f"TS: {parm} needs exactly one of TSVAL and TSVALNF")
print(json.dumps({"rows": rows, "dm": list(dm["USUBJID"]), "dm_columns": list(dm.columns), "problems": problems,
    "lb": [[u, t, r] for u, t, r in zip(lb["USUBJID"], lb["LBTESTCD"], lb["LBORRES"])]}))
"""


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
                # R4 itself: fhir.resources 6.4.0 with pydantic 1, in a venv of its own (.ci/run makes it).
                r4 = os.path.join(ROOT, ".venv-r4", "bin", "python")
                if os.path.exists(r4):
                    checked = subprocess.run([r4, os.path.join(ROOT, "scripts", "check_fhir.py"), out], capture_output=True, text=True)
                    self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)
                    self.assertIn("4.0.1", checked.stdout)
                elif os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                    self.fail(".venv-r4 with fhir.resources 6.4.0 is missing (see .ci/run)")
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
