wrk.method = "POST"
wrk.body = '{"visit":"day_7","test":"ALT","value":55,"unit":"U/L"}'
wrk.headers["Content-Type"] = "application/json"
