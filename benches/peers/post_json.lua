-- wrk script for the framework benchmark (load.sh scenario json): every request is
-- `POST /users/42` (the path is the URL's) with a small JSON body and the `x-client` field
-- one of the servers' middlewares reads. See peers/frameworks.
wrk.method = "POST"
wrk.body = '{"name":"Ada Lovelace","tags":["math","engines","poetry"]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-client"] = "wrk"
