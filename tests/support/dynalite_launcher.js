#!/usr/bin/env node
// dynalite through its library API, for the tests (tests/support/emulators.py owns the process).
//
// Takes dynalite's own command-line options, parsed as its cli.js parses them, with one
// difference: `--port 0` (the default) binds a free port, where cli.js would take 4567. Once
// it listens it writes the port it got as the first line of stdout, so no other process can
// take the port between choosing and binding it. A port in use is an error (exit 1), never a
// fallback to another port: a revived dynalite must come back where its clients point.
// Exits on SIGTERM and SIGINT. Nothing else here writes to stdout.
'use strict'

const path = require('path')

// The repo's own install (scripts/bootstrap.sh): node resolves bare names from this file's
// directory, which has no node_modules.
const modules = path.resolve(__dirname, '..', '..', 'tools', 'node_modules')
const argv = require(path.join(modules, 'minimist'))(process.argv.slice(2))
const dynalite = require(path.join(modules, 'dynalite'))

const port = argv.port ?? 0
const host = argv.host ?? '127.0.0.1'
const server = dynalite(argv)

server.on('error', (error) => {
  console.error(`dynalite cannot listen on ${host}:${port}: ${error.code || error.message}`)
  process.exit(1)
})
server.listen(port, host, () => {
  process.stdout.write(`${server.address().port}\n`)
})
// Node exits on these by default, except as PID 1 (a container): say so explicitly.
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0))
