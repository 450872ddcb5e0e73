"""Signs in through the login form (with its CSRF token) and prints the session cookie, for reading pages under load."""
import http.cookiejar
import re
import sys
import urllib.parse
import urllib.request

url, username, password = sys.argv[1:4]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
page = opener.open(url + "/login").read().decode()
csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
opener.open(url + "/login", data=urllib.parse.urlencode({"username": username, "password": password, "csrf": csrf}).encode())
print(next(c.value for c in jar if c.name == "casebook_session"))
