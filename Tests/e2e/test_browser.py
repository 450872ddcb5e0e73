"""Sign in, see the dashboard, sign out, and a wrong password refused: in a real browser against a real server."""
import unittest

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from harness import PASSWORD, Casebook, chromium, submit


class LoginInABrowser(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.casebook = Casebook()
        cls.casebook.create_user("admin", "admin")
        cls.casebook.create_user("ana", "investigator", site="SYSU3")
        cls.casebook.start()
        cls.driver = chromium()

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.casebook.stop()

    def setUp(self):
        self.driver.delete_all_cookies()

    def sign_in(self, username, password):
        d = self.driver
        d.get(self.casebook.url + "/login")
        d.find_element(By.ID, "username").send_keys(username)
        d.find_element(By.ID, "password").send_keys(password)
        submit(d, d.find_element(By.ID, "sign-in"))

    def test_sign_in_see_dashboard_sign_out(self):
        d = self.driver
        self.sign_in("admin", PASSWORD)
        welcome = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "welcome")))
        self.assertIn("Signed in as admin", welcome.text)
        self.assertEqual(d.title, "Dashboard · Casebook")
        submit(d, d.find_element(By.ID, "logout"))
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "sign-in")))
        self.assertTrue(d.current_url.endswith("/login"))
        # Signed out means the dashboard is no longer reachable.
        d.get(self.casebook.url + "/")
        self.assertTrue(d.current_url.endswith("/login"))

    def test_wrong_password_is_refused(self):
        d = self.driver
        self.sign_in("admin", "not-the-password")
        message = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "message")))
        # The one answer to every refused sign-in: it does not tell a wrong password from an unknown user or a lock.
        self.assertEqual(message.text, "Sign-in failed: wrong user ID or password, or the account is locked. "
                                       "Try again later or ask an administrator.")
        self.assertEqual(d.find_elements(By.ID, "welcome"), [])

    def test_register_a_participant_and_read_its_history(self):
        d = self.driver
        self.sign_in("ana", PASSWORD)
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "welcome")))
        d.get(self.casebook.url + "/participants")
        Select(d.find_element(By.ID, "siteCode")).select_by_value("SYSU3")
        d.find_element(By.ID, "screeningNumber").send_keys("SYSU3-001")
        submit(d, d.find_element(By.XPATH, "//button[text()='Register participant']"))
        status = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "current-status")))
        self.assertIn("Status: screening", status.text)
        Select(d.find_element(By.ID, "status")).select_by_value("eligible")
        d.find_element(By.ID, "reason").send_keys("inclusion criteria confirmed")
        submit(d, d.find_element(By.XPATH, "//button[text()='Save status']"))
        WebDriverWait(d, 10).until(EC.text_to_be_present_in_element((By.ID, "current-status"), "Status: eligible"))
        submit(d, d.find_element(By.LINK_TEXT, "History of this record"))
        history = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "history")))
        self.assertIn("inclusion criteria confirmed", history.text)
        self.assertIn("status: screening → eligible", history.text)


    def test_a_fresh_server_shows_the_built_in_study(self):
        d = self.driver
        self.sign_in("ana", PASSWORD)
        WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "welcome")))
        submit(d, d.find_element(By.LINK_TEXT, "Study"))
        title = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "study-title")))
        self.assertIn("Acute-on-Chronic Liver Failure After Liver Transplantation", title.text)
        self.assertIn("1×10^10 particles in 100 mL", d.find_element(By.ID, "interventions").text)
        submit(d, d.find_element(By.LINK_TEXT, "Schedule of assessments"))
        grid = WebDriverWait(d, 10).until(EC.presence_of_element_located((By.ID, "schedule")))
        self.assertIn("time_zero +24h ±2h", grid.text)


if __name__ == "__main__":
    unittest.main()
