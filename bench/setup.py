"""Creates the participants the lab-save benchmark writes to, through the JSON API, and prints their ids."""
import json
import sys
import urllib.request

url, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(count):
    body = json.dumps({"siteCode": "SYSU3", "screeningNumber": f"B-{i:06d}"}).encode()
    request = urllib.request.Request(url + "/api/v1/participants", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        print(json.load(response)["id"])
