// The smallest Node app of README's quickstart (tests/it/first_deploy.rs):
// 200 "ok" on every path, on the port teal gives it ($PORT), on loopback.
const http = require("http");

http
  .createServer((req, res) => {
    res.setHeader("Content-Type", "text/plain");
    res.end("ok\n");
  })
  .listen(Number(process.env.PORT), "127.0.0.1");

process.on("SIGTERM", () => process.exit(0));
