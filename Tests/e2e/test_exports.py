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




def python_with(module):
    for python in (os.path.join(ROOT, ".venv", "bin", "python"), sys.executable):
        if os.path.exists(python) and subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return python
    return None


SCHEMA = os.path.join(ROOT, "..", "shared", "reference", "xsd", "odm-1.3.2", "ODM1-3-2.xsd")
DEFINE_SCHEMA = os.path.join(ROOT, "..", "shared", "reference", "xsd", "define-2.1", "schema", "cdisc-definexml-2.1.0", "define2-1-0.xsd")



def xmllint(test, path, schema):
    """libxml2's own validator (apt-get install libxml2-utils), beside lxml and odmlib; --nonet: the schemas import
    xlink and xml from beside themselves."""
    tool = shutil.which("xmllint")
    if tool is None:
        if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
            test.fail("xmllint is not installed (see .ci/run)")
        return
    checked = subprocess.run([tool, "--noout", "--nonet", "--schema", schema, path], capture_output=True, text=True)
    test.assertEqual(checked.returncode, 0, checked.stderr[-3000:])
    test.assertIn("validates", checked.stderr)


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
                            xmllint(self, out, SCHEMA)
                            if os.environ.get("CASEBOOK_REQUIRE_ALL") == "1":
                                self.assertIn("odmlib", checked.stdout)
                            with open(out) as f:
                                text = f.read()
                            self.assertEqual(text.count("<SubjectData "), casebook.scalar("SELECT COUNT(*) FROM participants"))
                            self.assertEqual(text.count('<ItemData ItemOID="CB.I.LBTESTCD"'), casebook.scalar("SELECT COUNT(*) FROM lab_results"))
                            arms = text.count('<ItemData ItemOID="CB.I.ARMCD"')
                            self.assertEqual(arms, 0 if blinded else casebook.scalar("SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL"))
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
                    xmllint(self, os.path.join(out, "define.xml"), DEFINE_SCHEMA)
                # R's foreign writes every dataset out as CSV, for the comparison cell by cell with pyreadstat's reading.
                rdir = os.path.join(casebook.dir.name, f"r-{blinded}")
                os.makedirs(rdir)
                r = subprocess.run([rscript, "-e", R_DUMP, out, rdir], capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
                # pyreadstat: every dataset against R's reading, and each domain against the database.
                read = subprocess.run([python, "-c", READ_BACK, out, rdir], capture_output=True, text=True)
                self.assertEqual(read.returncode, 0, read.stderr)
                back = json.loads(read.stdout)
                self.assertEqual(back["problems"], [])
                self.assertEqual(len(back["dm"]), casebook.scalar("SELECT COUNT(*) FROM participants"))
                self.assertEqual(len(set(back["dm"])), len(back["dm"]), "USUBJID unique")
                self.assertEqual("ARMCD" in back["dm_columns"], not blinded)
                rows = casebook.rows(
                    "SELECT s.code, p.screening_number, l.test_code, l.entered_value FROM lab_results l JOIN participants p ON p.id = l.participant_id "
                    "JOIN sites s ON s.id = p.site_id")
                expected = sorted((f"{code}-{site}-{number}", test, float(value)) for site, number, test, value in rows)
                got = sorted((u, t, float(v)) for u, t, v in back["lb"])
                self.assertEqual(len(got), len(expected))
                for (eu, et, ev), (gu, gt, gv) in zip(expected, got):
                    self.assertEqual((eu, et), (gu, gt))
                    self.assertAlmostEqual(ev, gv, places=6)
                self.assertEqual(sorted(back["compared"]), sorted(f for f in files if f.endswith(".xpt")), "R read every dataset")
                self.assertGreater(back["cells"], 1000)
                self.compare_with_database(casebook, code, blinded, back)
        finally:
            casebook.stop()

    def compare_with_database(self, casebook, code, blinded, back):
        """Each subject-level domain against the rows it comes from: who, which arm, which events, doses and vital signs."""
        study = json.loads(casebook.cli("study", "show", "--json").stdout)
        subjects = {pid: f"{code}-{site}-{number}" for pid, site, number in casebook.rows(
            "SELECT p.id, s.code, p.screening_number FROM participants p JOIN sites s ON s.id = p.site_id")}
        self.assertEqual(sorted(back["dm"]), sorted(subjects.values()))
        if not blinded:
            # The arm now: the enrolment randomization's, or a later stage's (ARMCD is upper case).
            arms = {subjects[pid]: arm.upper() for pid, arm in casebook.rows("SELECT participant_id, arm FROM randomization_slots WHERE participant_id IS NOT NULL")}
            for pid, arm in casebook.rows("SELECT participant_id, arm_after FROM stage_slots WHERE arm_after IS NOT NULL ORDER BY allocated_at"):
                arms[subjects[pid]] = arm.upper()
            self.assertEqual({u: a for u, a in back["dm_arm"] if a}, arms)
        # AE: one record per adverse event, with its term, grade and seriousness.
        events = sorted((subjects[pid], term, int(grade), "Y" if str(serious) in ("1", "t", "true", "True") else "N")
                        for pid, term, grade, serious in casebook.rows("SELECT participant_id, term, grade, serious FROM adverse_events"))
        self.assertEqual(sorted((u, t, int(float(g)), s) for u, t, g, s in back["ae"]), events)
        # EX: one record per dose given; EC (blinded) one per dose recorded, ECOCCUR saying whether it was given.
        doses = casebook.rows("SELECT participant_id, CASE WHEN given THEN 'Y' ELSE 'N' END FROM doses")
        if blinded:
            self.assertEqual(sorted(back["exposure"]), sorted([subjects[pid], given] for pid, given in doses))
        else:
            self.assertEqual(sorted(u for u, _ in back["exposure"]), sorted(subjects[pid] for pid, given in doses if given == "Y"))
        # VS: every coded observation of every form, value for value.
        coded = {(f["code"], field["code"]) for f in study["forms"] for field in f["fields"] if field.get("loinc") and not field.get("lab")}
        expected = []
        for pid, form, data in casebook.rows("SELECT participant_id, form_code, data FROM form_records"):
            for key, value in json.loads(data).items():
                if (form, key) in coded and value not in (None, ""):
                    expected.append([subjects[pid], float(value)])
        self.assertEqual(len(back["vs"]), len(expected))
        if coded:
            self.assertGreater(len(expected), 0, "the demo records vital signs")
        self.assertEqual(sorted(back["vs"]), sorted(expected))
        # IE: one record per criterion a screen failure failed.
        failed = sum(len([c for c in (criteria or "").split(",") if c]) for (criteria,) in casebook.rows("""
            SELECT r.failed_criteria FROM eligibility_reviews r WHERE r.outcome = 'screen_failed'
              AND r.decided_at = (SELECT MAX(r2.decided_at) FROM eligibility_reviews r2 WHERE r2.participant_id = r.participant_id)"""))
        self.assertEqual(back["rows"]["ie.xpt"], failed)


R_DUMP = """
args <- commandArgs(trailingOnly = TRUE)
for (f in list.files(args[1], pattern = "[.]xpt$")) {
  x <- foreign::read.xport(file.path(args[1], f))
  write.csv(x, file.path(args[2], sub("[.]xpt$", ".csv", f)), row.names = FALSE, na = "")
}
"""


READ_BACK = """
import json, math, os, sys, pyreadstat
import csv
out, rdir = sys.argv[1], sys.argv[2]
rows = {}
problems = []
compared = []
cells = 0
def same(ours, theirs):
    if isinstance(ours, float):
        if math.isnan(ours):
            return theirs == "" or theirs == "NA"
        return theirs != "" and abs(float(theirs) - ours) <= 1e-12 * max(1.0, abs(ours))
    return (ours or "").rstrip(" ") == theirs.rstrip(" ")
for name in sorted(os.listdir(out)):
    if name.endswith(".xpt"):
        frame, meta = pyreadstat.read_xport(os.path.join(out, name), disable_datetime_conversion=True)
        rows[name] = len(frame)
        with open(os.path.join(rdir, name[:-4] + ".csv"), newline="") as f:
            theirs = list(csv.reader(f))
        if theirs[0] != list(frame.columns):
            problems.append(f"{name}: R reads columns {theirs[0]}, pyreadstat {list(frame.columns)}")
            continue
        if len(theirs) - 1 != len(frame):
            problems.append(f"{name}: R reads {len(theirs) - 1} records, pyreadstat {len(frame)}")
            continue
        for i, record in enumerate(frame.itertuples(index=False)):
            for column, ours, other in zip(frame.columns, record, theirs[i + 1]):
                cells += 1
                if not same(ours, other):
                    problems.append(f"{name} record {i + 1} {column}: pyreadstat {ours!r}, R {other!r}")
        compared.append(name)
dm, meta = pyreadstat.read_xport(os.path.join(out, "dm.xpt"))
lb, _ = pyreadstat.read_xport(os.path.join(out, "lb.xpt"))
ae, _ = pyreadstat.read_xport(os.path.join(out, "ae.xpt"))
ts, _ = pyreadstat.read_xport(os.path.join(out, "ts.xpt"))
vs = pyreadstat.read_xport(os.path.join(out, "vs.xpt"))[0] if os.path.exists(os.path.join(out, "vs.xpt")) else None
exposure = pyreadstat.read_xport(os.path.join(out, "ex.xpt" if os.path.exists(os.path.join(out, "ex.xpt")) else "ec.xpt"))[0]
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
print(json.dumps({"rows": rows, "dm": list(dm["USUBJID"]), "dm_columns": list(dm.columns), "problems": problems[:50],
    "compared": compared, "cells": cells,
    "dm_arm": [[u, a] for u, a in zip(dm["USUBJID"], dm["ARMCD"])] if "ARMCD" in dm.columns else [],
    "ae": [[u, t, g, s] for u, t, g, s in zip(ae["USUBJID"], ae["AETERM"], ae["AETOXGR"], ae["AESER"])],
    "exposure": [[u, o] for u, o in zip(exposure["USUBJID"], exposure["ECOCCUR"] if "ECOCCUR" in exposure.columns else exposure["USUBJID"])],
    "vs": [] if vs is None else [[u, float(v)] for u, v in zip(vs["USUBJID"], vs["VSORRES"])],
    "lb": [[u, t, r] for u, t, r in zip(lb["USUBJID"], lb["LBTESTCD"], lb["LBORRES"])]}))
"""


class FHIRExport(unittest.TestCase):
    def test_both_studies_export_and_validate(self):
        python = python_with("fhir.resources")
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
                self.assertEqual(len(kinds["Patient"]), casebook.scalar("SELECT COUNT(*) FROM participants"))
                self.assertEqual(len(kinds["ResearchSubject"]), len(kinds["Patient"]))
                self.assertEqual(len(kinds.get("Observation", [])), casebook.scalar("SELECT COUNT(*) FROM lab_results"))
                self.assertEqual(len(kinds.get("MedicationAdministration", [])), casebook.scalar("SELECT COUNT(*) FROM doses"))
                self.assertEqual(len(kinds.get("AdverseEvent", [])), casebook.scalar("SELECT COUNT(*) FROM adverse_events"))
                # Pseudonymous: a Patient carries no name and at most a birth year.
                for patient in kinds["Patient"]:
                    self.assertNotIn("name", patient)
                    self.assertLessEqual(len(patient.get("birthDate", "")), 4)
                arms = [s for s in kinds["ResearchSubject"] if "assignedArm" in s]
                if blinded:
                    self.assertEqual(arms, [])
                    self.assertNotIn("arm", kinds["ResearchStudy"][0])
                else:
                    self.assertEqual(len(arms), casebook.scalar("SELECT COUNT(*) FROM randomization_slots WHERE participant_id IS NOT NULL"))
            # Nothing is left beside the files written.
            self.assertEqual(sorted(f for f in os.listdir(casebook.dir.name) if f.endswith(".partial")), [])
        finally:
            casebook.stop()


if __name__ == "__main__":
    unittest.main()
