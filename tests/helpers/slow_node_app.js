// slow_node_app.js - fdsup test helper: a Node.js HTTP server that never heard of
// sd_notify, and that starts listening only after a start-up of STARTUP_MS (default
// 300) spent busy, as a real app's module loading and warm-up is: until then nothing
// accepts. One app for every supervisor the benchmarks compare; where its socket comes
// from is read off the environment, as each supervisor hands it over:
//   LISTEN_FDS (or nothing)  fd 3, systemd's socket-activation protocol (fdsupd)
//   SERVER_STARTER_PORT      "host:port=fd[;...]": the first fd (Server::Starter's
//                            start_server). start_server runs one process per
//                            generation, so with APP_WORKERS=N (default 1) that process
//                            is a cluster primary forking N workers that each accept on
//                            the shared fd themselves (SCHED_NONE: no proxying)
//   PORT                     binds 127.0.0.1:PORT itself (pm2 cluster mode, whose God
//                            daemon shares the port among its workers), then says
//                            process.send('ready') for pm2's wait_ready
// With BENCH_STAMP_UDP=PORT it sends "MONOTONIC_NS PID" to 127.0.0.1:PORT as it starts
// listening (the benchmarks' stamp of "accepting", the same under every supervisor).
//
// Usage: node slow_node_app.js [STARTUP_MS]
// Answers every request "<FDSUP_WORKER>[<FDSUP_INSTANCE>] pid <pid>\n"; SIGTERM or SIGINT
// (pm2's stop signal) closes the listener, finishes what is in flight, then exits 0.
'use strict';
const cluster = require('cluster');
const dgram = require('dgram');
const http = require('http');

const startupMs = Number(process.argv[2] || 300);
const label = `${process.env.FDSUP_WORKER || 'app'}[${process.env.FDSUP_INSTANCE || '0'}]`;

function starterFd() {
    const first = process.env.SERVER_STARTER_PORT.split(';')[0];
    return Number(first.slice(first.lastIndexOf('=') + 1));
}

function stampAccepting() {
    const port = Number(process.env.BENCH_STAMP_UDP || 0);
    if (!port) return;
    const sock = dgram.createSocket('udp4');
    sock.send(`${process.hrtime.bigint()} ${process.pid}`, port, '127.0.0.1', () => sock.close());
}

// start_server's process with APP_WORKERS > 1: only forks, forwards the stop signal, and
// exits when its workers have.
function primary(workers) {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    for (let i = 0; i < workers; i++) cluster.fork();
    const stop = () => {
        for (const worker of Object.values(cluster.workers)) worker.process.kill('SIGTERM');
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    cluster.on('exit', () => {
        if (Object.keys(cluster.workers).length === 0) process.exit(0);
    });
}

function serve() {
    // Busy, not asleep: a start-up that loads and compiles code holds the event loop.
    const until = Date.now() + startupMs;
    while (Date.now() < until) { /* warming up */ }

    const server = http.createServer((req, res) => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Connection': 'close' });
        res.end(`${label} pid ${process.pid}\n`);
    });
    const listening = () => {
        stampAccepting();
        if (process.env.PORT && process.send) process.send('ready');
    };
    if (process.env.SERVER_STARTER_PORT) {
        server.listen({ fd: starterFd() }, listening);
    } else if (process.env.PORT && !process.env.LISTEN_FDS) {
        server.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }, listening);
    } else {
        server.listen({ fd: 3 }, listening);
    }
    const stop = () => server.close(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

const workers = Number(process.env.APP_WORKERS || 1);
if (process.env.SERVER_STARTER_PORT && workers > 1 && cluster.isPrimary) {
    primary(workers);
} else {
    serve();
}
