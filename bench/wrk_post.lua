-- POST the body in $BENCH_BODY_FILE with the headers in $BENCH_HEADERS ("name: value|...").
local file = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(pair, "^([^:]+):%s*(.*)$")
  wrk.headers[name] = value
end
