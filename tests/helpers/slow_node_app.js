// slow_node_app.js - fdsup test helper: a Node.js HTTP server that never heard of
// sd_notify. It takes its listening socket at fd 3, as systemd's LISTEN_FDS protocol
// hands it over, but only after a start-up of STARTUP_MS (default 300) spent busy, as a
// real app's module loading and warm-up is: until then nothing accepts.
//
// Usage: node slow_node_app.js [STARTUP_MS]
// Answers every request "<FDSUP_WORKER>[<FDSUP_INSTANCE>] pid <pid>\n"; SIGTERM closes
// the listener, finishes what is in flight, then exits 0.
'use strict';
const http = require('http');

const startupMs = Number(process.argv[2] || 300);
const label = `${process.env.FDSUP_WORKER || 'app'}[${process.env.FDSUP_INSTANCE || '0'}]`;

// Busy, not asleep: a start-up that loads and compiles code holds the event loop.
const until = Date.now() + startupMs;
while (Date.now() < until) { /* warming up */ }

const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Connection': 'close' });
    res.end(`${label} pid ${process.pid}\n`);
});
server.listen({ fd: 3 });
process.on('SIGTERM', () => server.close(() => process.exit(0)));
