"""The data monitoring committee's material on the demo trials of both studies, read in a real browser: the CONSORT
diagram, the open and closed DSMB reports from the CLI and from the pages, who may read which, the audit of each
report, and the stopping rule raising its alert as adverse events arrive (the arm never shown to a blinded role)."""
import datetime
import json
import os
import time
import unittest
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from harness import Casebook, chromium, databases, sign_in

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
ARTEFACTS = os.environ.get("CASEBOOK_ARTEFACTS")



class DSMB(unittest.TestCase):
    def api(self, token, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.casebook.url + path, data=data, method="POST" if body is not None else "GET",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            return json.loads(r.read().decode())

    def status(self, token, path):
        try:
            with urllib.request.urlopen(urllib.request.Request(self.casebook.url + path, headers={"Authorization": f"Bearer {token}"})) as r:
                return r.status
        except urllib.error.HTTPError as error:
            return error.code

    def coordinator(self, c, definition):
        """A coordinator of the first site and an API token of theirs, made once per installation."""
        if getattr(c, "coordinator_token", None) is None:
            c.create_user("cora", "coordinator", site=definition["sites"][0]["code"])
            c.coordinator_token = c.cli("tokens", "create", "--username", "cora").stdout.strip()
        return c.coordinator_token

    def test_reports_of_both_studies(self):
        for database in databases():
            for study in (None, "studies/ucmsc-aclf.yaml"):
                with self.subTest(database=database, study=study or "built-in"):
                    self.casebook = Casebook(database)
                    try:
                        self.walk(study)
                    finally:
                        self.casebook.stop()

    def walk(self, study):
        c = self.casebook
        if study:
            c.cli("study", "init", os.path.join(ROOT, study))
        c.cli("demo", "--participants", "40", "--seed", "5")
        definition = json.loads(c.cli("study", "show", "--json").stdout)
        masked = definition["identity"]["masking"].upper() != "NONE"
        arm_names = [a["name"] for a in definition["arms"]]
        allocated = {arm for (arm,) in c.rows("SELECT DISTINCT arm FROM randomization_slots WHERE participant_id IS NOT NULL")}
        shown_arms = [a["name"] for a in definition["arms"] if a["code"] in allocated]

        # The CLI writes both sessions; the closed one names the arms, the open one pools them.
        closed, opened = os.path.join(c.dir.name, "closed.html"), os.path.join(c.dir.name, "open.html")
        c.cli("report", "dsmb", "--session", "closed", "--output", closed)
        c.cli("report", "dsmb", "--session", "open", "--output", opened)
        # Written again over the first: replaced whole, never lost.
        c.cli("report", "dsmb", "--session", "closed", "--output", closed)
        with open(closed) as f:
            closed_text = f.read()
        with open(opened) as f:
            open_text = f.read()
        for name in shown_arms:
            self.assertIn(f"{name} (N = ", closed_text)
            self.assertNotIn(f"{name} (N = ", open_text)
            self.assertNotIn(f"Allocated to {name}", open_text)
        self.assertIn("<svg", open_text)
        self.assertIn("id=\"stopping\"", closed_text)
        self.assertEqual(int(c.rows("SELECT COUNT(*) FROM audit_events WHERE entity = 'report'")[0][0]), 3)
        with self.assertRaises(Exception):
            c.cli("report", "dsmb", "--session", "ajar", "--output", closed)

        site = definition["sites"][0]["code"]
        for user, role in [("sam", "statistician"), ("ivy", "independent-statistician"), ("deb", "dsmb-viewer"), ("ines", "investigator")]:
            c.create_user(user, role, site=site)
        c.env["CASEBOOK_MONITOR_SECONDS"] = "1"
        c.start()
        deb = c.cli("tokens", "create", "--username", "deb").stdout.strip()
        sam = c.cli("tokens", "create", "--username", "sam").stdout.strip()
        ines = c.cli("tokens", "create", "--username", "ines").stdout.strip()

        # Who reads what: the closed session is for the committee (and the statistician only when nothing is masked).
        driver = chromium()
        try:
            def page(user, path):
                driver.delete_all_cookies()
                sign_in(driver, c.url, user)
                driver.get(c.url + path)
                return driver

            d = page("deb", "/reports/dsmb?session=closed")
            WebDriverWait(d, 20).until(EC.presence_of_element_located((By.ID, "closed-banner")))
            svg = d.find_element(By.CSS_SELECTOR, "#consort + figure svg, figure svg")
            self.assertEqual(svg.get_attribute("role"), "img")
            self.assertGreater(svg.size["height"], 100, "the CONSORT diagram is drawn")
            for name in shown_arms:
                self.assertIn(name, d.find_element(By.ID, "ae-summary").text)
            if ARTEFACTS:
                os.makedirs(ARTEFACTS, exist_ok=True)
                d.save_screenshot(os.path.join(ARTEFACTS, f"dsmb-closed-{c.database}-{definition['code']}.png"))

            d = page("sam", "/reports/dsmb?session=open")
            WebDriverWait(d, 20).until(EC.presence_of_element_located((By.ID, "open-banner")))
            text = d.find_element(By.TAG_NAME, "body").text
            for name in arm_names:
                self.assertNotIn(f"{name} (N =", text)
            d.get(c.url + "/reports/dsmb?session=closed")
            if masked:
                self.assertIn("403", d.title + d.find_element(By.TAG_NAME, "body").text)
            else:
                WebDriverWait(d, 20).until(EC.presence_of_element_located((By.ID, "closed-banner")))

            d = page("sam", "/consort")
            diagram = WebDriverWait(d, 20).until(EC.presence_of_element_located((By.CSS_SELECTOR, "#consort svg")))
            flow = self.api(sam, "/api/v1/consort")
            self.assertEqual(flow["assessed"], int(c.rows("SELECT COUNT(*) FROM participants")[0][0]))
            self.assertEqual(flow["stages"][0]["randomized"], len(c.rows("SELECT id FROM randomization_slots WHERE participant_id IS NOT NULL")))
            self.assertEqual(flow["pooled"], masked)
            self.assertIn(f"(n={flow['assessed']})", diagram.get_attribute("innerHTML").replace(" ", ""))
            if masked:
                for name in arm_names:
                    self.assertNotIn(name, diagram.get_attribute("innerHTML"))
        finally:
            driver.quit()
        self.assertEqual(self.status(ines, "/api/v1/monitoring/alerts"), 403)
        # Every report produced is audited: two from the CLI, and each page read (the refused one is not produced).
        self.assertEqual(int(c.rows("SELECT COUNT(*) FROM audit_events WHERE entity = 'report'")[0][0]), 5 if masked else 6)

        # CONSORT's follow-up boxes come from the definition's end-of-study field: a correction to "lost" moves one
        # participant of the first arm from completed to lost to follow-up.
        end = definition["participant"]["endOfStudy"]
        end_form, end_field = end["field"].split(".")
        done = c.rows(f"SELECT participant_id, visit_code, data FROM form_records WHERE form_code = '{end_form}'")
        if done:
            pid, visit, data = done[0]
            values = json.loads(data)
        else:
            # No one has reached the end of follow-up yet: a participant ends it early.
            pid = c.rows("SELECT participant_id FROM randomization_slots WHERE participant_id IS NOT NULL")[0][0]
            visit = next(f["visits"][0] for f in definition["forms"] if f["code"] == end_form)
            date_field = end["date"].split(".")[1]
            values = {date_field: datetime.date.today().isoformat()}
        values[end_field] = end["lost"][0]
        before = self.api(deb, "/api/v1/consort")
        request = urllib.request.Request(
            f"{c.url}/api/v1/participants/{pid.lower()}/forms/{visit}/{end_form}",
            data=json.dumps({"values": values, "reason": "site confirmed loss to follow-up"}).encode(), method="PUT",
            headers={"Authorization": f"Bearer {self.coordinator(c, definition)}", "Content-Type": "application/json"})
        urllib.request.urlopen(request).read()
        after = self.api(deb, "/api/v1/consort")
        lost = lambda flow: sum(arm["lostToFollowUp"] for arm in flow["stages"][0]["arms"])
        self.assertEqual(lost(after), lost(before) + 1)
        reasons = [r["label"] for arm in after["stages"][0]["arms"] for r in arm["lostToFollowUpReasons"]]
        self.assertIn("Lost to follow-up", reasons)

        # The stopping rule as data arrive: toxicities recorded through the API cross its boundary; the monitor raises
        # the alert within seconds; a blinded statistician learns only that it was crossed.
        rules = self.api(deb, "/api/v1/monitoring/stopping-rules")
        self.assertTrue(rules, "each study monitors a rule")
        rule = rules[0]
        self.assertFalse(rule["crossed"])
        self.assertEqual(self.api(deb, "/api/v1/monitoring/alerts"), [])
        rule_definition = definition["monitoring"]["stoppingRules"][0]
        monitored = set(rule_definition.get("arms") or [a["code"] for a in definition["arms"]])
        arm_of = {pid: arm for pid, arm in c.rows("SELECT participant_id, arm FROM randomization_slots WHERE participant_id IS NOT NULL")}
        for pid, arm in c.rows("SELECT participant_id, arm_after FROM stage_slots WHERE arm_after IS NOT NULL ORDER BY allocated_at"):
            arm_of[pid] = arm
        first_dose = {}
        started = "d.started_at" if c.database == "sqlite" else "EXTRACT(EPOCH FROM d.started_at)"
        query = (f"SELECT d.participant_id, {started} FROM doses d JOIN sites s ON s.id = d.site_id "
                 f"WHERE d.given = {'1' if c.database == 'sqlite' else 'true'} AND d.started_at IS NOT NULL AND s.code = '{site}'")
        for pid, started in c.rows(query):
            first_dose[pid] = min(first_dose.get(pid, float("inf")), float(started))
        dosed = sorted(pid for pid in first_dose if arm_of.get(pid) in monitored)
        needed = (rule["stopIfAtLeast"] or rule["boundaries"][-1]["stopIfAtLeast"]) - rule["events"]
        self.assertGreaterEqual(len(dosed), needed, "enough dosed participants to cross the boundary")
        cora = self.coordinator(c, definition)
        for i, pid in enumerate(dosed[:needed]):
            onset = datetime.datetime.fromtimestamp(first_dose[pid] + 2 * 3600, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M")
            # The first leads to discontinuation (CDISC AEACN "DRUG WITHDRAWN"); the others interrupt the infusion.
            self.api(cora, f"/api/v1/participants/{pid.lower()}/adverse-events", {
                "meddra": "10051792", "grade": 3, "onsetAt": onset, "attribution": "probable", "expected": False,
                "actionTaken": "permanently discontinued" if i == 0 else "infusion interrupted", "outcome": "recovered"})
        deadline = time.time() + 30
        alerts = []
        while time.time() < deadline and not alerts:
            alerts = self.api(deb, "/api/v1/monitoring/alerts")
            time.sleep(0.5)
        self.assertEqual(len(alerts), 1, "the monitor raised the crossing")
        self.assertEqual(alerts[0]["rule"], rule["code"])
        self.assertGreaterEqual(alerts[0]["events"], alerts[0]["stopIfAtLeast"])
        self.assertTrue(self.api(deb, "/api/v1/monitoring/stopping-rules")[0]["crossed"])
        seen_by_sam = self.api(sam, "/api/v1/monitoring/alerts")
        self.assertEqual(len(seen_by_sam), 1)
        if masked and not rule["pooledArms"]:
            self.assertEqual(seen_by_sam[0]["events"], 0, "a blinded statistician is not told the counts in an arm")
            self.assertIsNone(self.api(sam, "/api/v1/monitoring/stopping-rules")[0].get("events"))
        self.assertEqual(int(c.rows("SELECT COUNT(*) FROM audit_events WHERE entity = 'monitoring_alert'")[0][0]), 1)
        # The closed report counts the events: one participant's led to discontinuation.
        c.cli("report", "dsmb", "--session", "closed", "--output", closed)
        with open(closed) as f:
            closed_text = f.read()
        row = closed_text.split("Leading to discontinuation</th>")[1].split("</tr>")[0]
        self.assertIn(">1 (", row.split("</td>")[0], "everyone: one participant")
        self.assertIn("Boundary crossed", closed_text)
        # Raised once: further looks add nothing.
        time.sleep(2.5)
        self.assertEqual(len(self.api(deb, "/api/v1/monitoring/alerts")), 1)


if __name__ == "__main__":
    unittest.main()
