"""A lab result and an adverse event entered in a real browser: the grade appears as the value is typed, the term's grade definitions as it is chosen."""
import datetime
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness import PASSWORD, Casebook, chromium, submit


def now_text(hours=0):
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


class SafetyInABrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()
        cls.casebook.create_user("ines", "investigator", site="SYSU3")
        cls.casebook.start()
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.casebook.stop()

    def test_enter_a_lab_and_an_adverse_event(self):
        d = self.driver
        wait = WebDriverWait(d, 10)
        d.get(self.casebook.url + "/login")
        d.find_element(By.ID, "username").send_keys("ines")
        d.find_element(By.ID, "password").send_keys(PASSWORD)
        submit(d, d.find_element(By.ID, "sign-in"))
        wait.until(EC.presence_of_element_located((By.ID, "welcome")))
        d.get(self.casebook.url + "/participants")
        d.find_element(By.ID, "screeningNumber").send_keys("SYSU3-077")
        submit(d, d.find_element(By.XPATH, "//button[text()='Register participant']"))
        wait.until(EC.presence_of_element_located((By.ID, "lab-form")))

        # Bilirubin 200 µmol/L against the site's ULN 17.1 (PROTOCOL.md): 11.7 × ULN, CTCAE v4.03 grade 4.
        Select(d.find_element(By.ID, "visit")).select_by_value("screening")
        Select(d.find_element(By.ID, "test")).select_by_value("BILI")
        d.find_element(By.ID, "unit").send_keys("umol/L")
        d.find_element(By.ID, "value").send_keys("200")
        wait.until(EC.text_to_be_present_in_element((By.ID, "grade-preview"), "CTCAE v4.03 grade 4"))
        d.find_element(By.ID, "collectedAt").send_keys(now_text(-2))
        submit(d, d.find_element(By.ID, "save-lab"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "lab-table"), "200 umol/L"))
        self.assertIn("grade 4", d.find_element(By.ID, "lab-table").text)

        search = d.find_element(By.ID, "term-search")
        search.send_keys("Infusion related reaction")
        wait.until(EC.text_to_be_present_in_element_value((By.ID, "meddra"), "10051792"))
        definitions = wait.until(EC.text_to_be_present_in_element((By.ID, "grade-definitions"), "Grade 2: Therapy or infusion interruption indicated"))
        self.assertTrue(definitions)
        Select(d.find_element(By.ID, "grade")).select_by_value("2")
        d.find_element(By.ID, "onsetAt").send_keys(now_text(-1))
        Select(d.find_element(By.ID, "attribution")).select_by_value("probable")
        d.find_element(By.ID, "actionTaken").send_keys("infusion interrupted")
        d.find_element(By.ID, "outcome").send_keys("recovered")
        submit(d, d.find_element(By.ID, "save-ae"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "ae-table"), "Infusion related reaction (MedDRA 10051792)"))
        self.assertIn("2: Therapy or infusion interruption indicated", d.find_element(By.ID, "ae-table").text)

        d.get(self.casebook.url + "/safety")
        self.assertTrue(d.find_element(By.ID, "edish").is_displayed())
        self.assertIn("MSC-EV", d.find_element(By.ID, "primary-endpoint").text)


if __name__ == "__main__":
    unittest.main()
