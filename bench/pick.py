"""Prints the id of the middle participant whose screening number starts with PREFIX, paging through /api/v1/participants."""
import json
import sys
import urllib.request

base, token, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
found, after = [], None
while True:
    url = f"{base}/api/v1/participants?limit=500" + (f"&after={after}" if after else "")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    page = json.load(urllib.request.urlopen(request))
    found += [p["id"] for p in page["items"] if p["screeningNumber"].startswith(prefix)]
    after = page.get("next")
    if not after:
        break
print(found[len(found) // 2])
