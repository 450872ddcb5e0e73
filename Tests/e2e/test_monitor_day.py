"""A monitor's day in a real browser: a query on a lab value, answered by the coordinator's correction (its reason
asked for), closed and the value verified by the monitor; the investigator signs; a later change visibly
invalidates the signature; a database lock refuses writes through the page, the API, the CLI and the demo."""
import datetime
import json
import subprocess
import unittest
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness import PASSWORD, Casebook, chromium, databases, register, sign_in, submit


def now_text(hours=0):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


class MonitorsDay(unittest.TestCase):
    def as_user(self, username):
        self.driver.delete_all_cookies()
        sign_in(self.driver, self.casebook.url, username)

    def open_review(self):
        self.driver.get(self.participant + "/review")
        return WebDriverWait(self.driver, 10).until(EC.presence_of_element_located((By.ID, "review-table")))

    def query_row(self):
        return self.driver.find_element(By.CSS_SELECTOR, "#participant-queries table.queries tbody tr")

    def correct_bilirubin(self, value, reason):
        d = self.driver
        self.open_review()
        submit(d, d.find_element(By.CSS_SELECTOR, "#value-screening-lab-BILI a.correct"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "correct-form")))
        field = d.find_element(By.ID, "value")
        field.clear()
        field.send_keys(value)
        if reason is None:
            return
        d.find_element(By.ID, "reason").send_keys(reason)
        submit(d, d.find_element(By.ID, "save-correction"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "review-table")))

    def test_a_monitors_day(self):
        for database in databases():
            with self.subTest(database=database):
                self.walk(database)

    def walk(self, database):
        self.casebook = Casebook(database)
        for user, role in [("cora", "coordinator"), ("mona", "monitor"), ("ines", "investigator"), ("dora", "data-manager")]:
            self.casebook.create_user(user, role, site="SYSU3")
        self.casebook.start()
        self.driver = chromium()
        try:
            self.day()
        finally:
            self.driver.quit()
            self.casebook.stop()

    def day(self):
        d, wait = self.driver, WebDriverWait(self.driver, 10)

        # The coordinator enters bilirubin 250 µmol/L at screening.
        self.as_user("cora")
        self.participant = register(d, self.casebook.url, "SYSU3-201")
        Select(d.find_element(By.ID, "visit")).select_by_value("screening")
        Select(d.find_element(By.ID, "test")).select_by_value("BILI")
        d.find_element(By.ID, "value").send_keys("250")
        d.find_element(By.ID, "unit").send_keys("umol/L")
        d.find_element(By.ID, "collectedAt").send_keys(now_text(-3))
        submit(d, d.find_element(By.ID, "save-lab"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "lab-table"), "250 umol/L"))

        # The monitor raises a query on that value.
        self.as_user("mona")
        self.open_review()
        Select(d.find_element(By.ID, "target")).select_by_value("screening/lab.BILI")
        d.find_element(By.ID, "text").send_keys("Source document shows 205")
        submit(d, d.find_element(By.ID, "raise-query"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "participant-queries"), "Source document shows 205"))
        self.assertIn("open", self.query_row().text)

        # The coordinator's inbox shows it with the value in context; the correction asks for a reason.
        self.as_user("cora")
        d.get(self.casebook.url + "/queries")
        inbox = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "table.queries")))
        self.assertIn("250 umol/L", inbox.text)
        self.assertIn("Source document shows 205", inbox.text)
        self.correct_bilirubin("205", None)
        d.find_element(By.ID, "save-correction").click()
        self.assertTrue(d.find_element(By.ID, "reason").get_attribute("validationMessage"), "an empty reason is not sent")
        self.assertTrue(d.current_url.endswith("/correct"))
        d.find_element(By.ID, "reason").send_keys("transcription error; source shows 205")
        submit(d, d.find_element(By.ID, "save-correction"))
        wait.until(EC.presence_of_element_located((By.ID, "review-table")))
        self.assertIn("answered", self.query_row().text)
        self.assertIn("205 umol/L", d.find_element(By.ID, "value-screening-lab-BILI").text)
        # The field's own history: both values, who, why.
        submit(d, d.find_element(By.CSS_SELECTOR, "#value-screening-lab-BILI a[href$='/history']"))
        history = wait.until(EC.presence_of_element_located((By.ID, "value-history"))).text
        self.assertIn("250 umol/L → 205 umol/L", history)
        self.assertIn("transcription error", history)
        # A coordinator is never offered to close.
        self.open_review()
        self.assertNotIn("Close", self.query_row().text)

        # The monitor closes it and verifies the value.
        self.as_user("mona")
        self.open_review()
        submit(d, self.query_row().find_element(By.XPATH, ".//button[text()='Close']"))
        wait.until(EC.presence_of_element_located((By.ID, "review-table")))
        self.assertIn("closed", self.query_row().text)
        submit(d, d.find_element(By.CSS_SELECTOR, "#value-screening-lab-BILI form.verify button"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "value-screening-lab-BILI"), "verified by mona"))
        d.get(self.casebook.url + "/monitoring")
        self.assertIn("SYSU3", wait.until(EC.presence_of_element_located((By.ID, "verification-summary"))).text)
        self.assertIn("SYSU3-201", d.find_element(By.ID, "unsigned").text)

        # The investigator signs: user ID and password at the first signing of the session.
        self.as_user("ines")
        self.open_review()
        d.find_element(By.ID, "username").send_keys("ines")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        submit(d, d.find_element(By.ID, "sign"))
        signatures = wait.until(EC.presence_of_element_located((By.ID, "signatures"))).text
        self.assertIn("signed by ines", signatures)
        self.assertIn("I approve these data as accurate and complete", signatures)
        self.assertIn("Valid", signatures)
        self.assertIn("Asia/Shanghai", signatures)
        # Later in the same session, the password alone.
        self.assertEqual(d.find_elements(By.ID, "username"), [])

        # A change after signing shows on the signature.
        self.as_user("cora")
        self.correct_bilirubin("206", "second look at the source")
        self.as_user("mona")
        self.open_review()
        signatures = d.find_element(By.ID, "signatures").text
        self.assertIn("Invalid: data changed after signing", signatures)
        self.assertIn("screening/lab.BILI", signatures)
        # The verified value changed too: it must be verified again.
        self.assertIn("changed since verified", d.find_element(By.ID, "value-screening-lab-BILI").text)
        # The printable casebook holds the data and its whole audit trail.
        d.get(self.participant + "/casebook")
        trail = wait.until(EC.presence_of_element_located((By.ID, "casebook-trail"))).text
        for expected in ("transcription error; source shows 205", "create signature", "update lab_result", "create verification", "create query"):
            self.assertIn(expected, trail)
        self.assertIn("206 umol/L", d.find_element(By.ID, "casebook-labs").text)

        # The data manager locks the database; the page, the API, the CLI and the demo are refused.
        self.as_user("dora")
        d.get(self.casebook.url + "/locks")
        Select(wait.until(EC.presence_of_element_located((By.ID, "level")))).select_by_value("study")
        d.find_element(By.ID, "reason").send_keys("database lock for the final analysis")
        submit(d, d.find_element(By.ID, "lock"))
        self.assertIn("database lock for the final analysis", wait.until(EC.presence_of_element_located((By.ID, "locks"))).text)

        self.as_user("cora")
        d.get(self.participant)
        Select(wait.until(EC.presence_of_element_located((By.ID, "visit")))).select_by_value("screening")
        Select(d.find_element(By.ID, "test")).select_by_value("ALT")
        d.find_element(By.ID, "value").send_keys("40")
        d.find_element(By.ID, "unit").send_keys("U/L")
        d.find_element(By.ID, "collectedAt").send_keys(now_text(-3))
        submit(d, d.find_element(By.ID, "save-lab"))
        self.assertIn("the study is locked", wait.until(EC.presence_of_element_located((By.ID, "error"))).text)

        token = self.casebook.cli("tokens", "create", "--username", "cora").stdout.strip()
        participant_id = self.participant.rstrip("/").split("/")[-1]
        request = urllib.request.Request(
            f"{self.casebook.url}/api/v1/participants/{participant_id}/labs", method="POST",
            data=json.dumps({"visit": "screening", "test": "ALT", "value": 40, "unit": "U/L", "collectedAt": now_text(-3)}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        self.assertEqual(refused.exception.code, 409)
        self.assertIn("the study is locked", json.loads(refused.exception.read())["error"])

        for command in (["demo", "--participants", "3"], ["randomization", "generate"]):
            with self.assertRaises(subprocess.CalledProcessError) as failed:
                self.casebook.cli(*command)
            self.assertIn("the study is locked", failed.exception.stderr, command)
        audit = self.casebook.cli("audit", "verify").stdout
        self.assertIn("intact", audit)
        self.assertEqual(self.count("SELECT COUNT(*) FROM lab_results WHERE test_code = 'ALT'"), 0)
        self.assertGreaterEqual(self.count("SELECT COUNT(*) FROM audit_events WHERE entity = 'write_refused'"), 4)

        # The data manager lifts it from the command line: only as a data manager, and with a reason.
        lock_id = self.casebook.cli("lock", "list").stdout.split("\t")[0]
        with self.assertRaises(subprocess.CalledProcessError) as refused_cli:
            self.casebook.cli("lock", "release", lock_id, "--reason", "late data", "--user", "cora")
        self.assertIn("only a data manager", refused_cli.exception.stderr)
        self.casebook.cli("lock", "release", lock_id, "--reason", "late lab from the site", "--user", "dora")
        self.assertEqual(self.casebook.cli("lock", "list").stdout.strip(), "")
        with urllib.request.urlopen(request) as saved:
            self.assertEqual(saved.status, 201)

    def count(self, sql):
        rows = self.casebook.sql(sql)
        return int(rows[0][0]) if isinstance(rows, list) else int(rows.strip())


if __name__ == "__main__":
    unittest.main()
