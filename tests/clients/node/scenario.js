// A Node.js client of dynamo-gateway, loaded at run time from protos/ with @grpc/proto-loader.
//
// Runs the cross-language scenario against a running gateway: put, get, a paginated query,
// a ParallelScan stream and a conditional failure whose google.rpc.Status details (ErrorInfo,
// ConditionalCheckFailure) it decodes with protobufjs. Prints one JSON summary line; exits
// non-zero naming the step when anything differs from what the contracts promise.
//
// usage: node scenario.js --target HOST:PORT --include DIR_WITH_google/rpc [--table app] [--pk node#orders]
'use strict'

const path = require('node:path')
const fs = require('node:fs')
const { createRequire } = require('node:module')

const ROOT = path.resolve(__dirname, '..', '..', '..')
// The packages live with the project's other Node tools (tools/package.json, installed by bootstrap).
const toolsRequire = createRequire(path.join(ROOT, 'tools', 'package.json'))
const grpc = toolsRequire('@grpc/grpc-js')
const protoLoader = toolsRequire('@grpc/proto-loader')
const protobuf = toolsRequire('protobufjs')

const LINES = 25

function parseArgs (argv) {
  const args = { target: '127.0.0.1:50051', table: 'app', pk: 'node#orders', include: [] }
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '')
    if (name === 'include') args.include.push(argv[i + 1])
    else args[name] = argv[i + 1]
  }
  return args
}

function fail (step, message) {
  process.stderr.write(`scenario failed at ${step}: ${message}\n`)
  process.exit(1)
}

function call (client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 60000 }, (err, response) => (err ? reject(err) : resolve(response)))
  })
}

// Resolves imports against the include directories; google/protobuf/* come with protobufjs.
function detailTypes (includeDirs) {
  const root = new protobuf.Root()
  root.resolvePath = (origin, target) => {
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target)
      if (fs.existsSync(candidate)) return candidate
    }
    return target
  }
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto', 'dynamo_gateway/v1/errors.proto'], { keepCase: true })
  return root
}

function decodeStatusDetails (root, error) {
  const [raw] = error.metadata.get('grpc-status-details-bin')
  if (!raw) return []
  const status = root.lookupType('google.rpc.Status').decode(raw)
  return status.details.map((any) => {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1)
    return { typeName, message: root.lookupType(typeName).decode(any.value) }
  })
}

async function main () {
  const args = parseArgs(process.argv.slice(2))
  const includeDirs = [path.join(ROOT, 'protos'), ...args.include]
  const definition = protoLoader.loadSync('dynamo_gateway/v1/service.proto', {
    includeDirs, keepCase: true, longs: String, enums: String, defaults: false, oneofs: true,
  })
  const { DynamoDBService } = grpc.loadPackageDefinition(definition).dynamo_gateway.v1
  const client = new DynamoDBService(args.target, grpc.credentials.createInsecure())
  const root = detailTypes(includeDirs)
  const pk = args.pk
  const line = (i) => `line#${String(i).padStart(2, '0')}`

  // put: every line of one order, with a number, a string set and binary.
  for (let i = 0; i < LINES; i++) {
    await call(client, 'PutItem', {
      table_name: args.table,
      item: {
        pk: { s: pk }, sk: { s: line(i) }, qty: { n: String(i) },
        tags: { ss: { values: ['node', 'grpc'] } }, blob: { b: Buffer.from([0, i, 255]) },
      },
    }).catch((e) => fail('put', e.message))
  }

  // get: typed values come back as written.
  const got = await call(client, 'GetItem', {
    table_name: args.table, key: { pk: { s: pk }, sk: { s: line(7) } }, consistent_read: true,
  }).catch((e) => fail('get', e.message))
  const tags = [...got.item.tags.ss.values].sort().join(',')
  if (!got.found || got.item.qty.n !== '7' || !got.item.blob.b.equals(Buffer.from([0, 7, 255])) || tags !== 'grpc,node') {
    fail('get', JSON.stringify(got.item))
  }

  // query with pagination: pages of 10 until last_evaluated_key is empty.
  const queried = []
  let pages = 0
  let start
  for (;;) {
    const page = await call(client, 'Query', {
      table_name: args.table,
      key_condition_expression: 'pk = :pk',
      expression_attribute_values: { ':pk': { s: pk } },
      limit: 10,
      exclusive_start_key: start,
    }).catch((e) => fail('query', e.message))
    pages++
    for (const item of page.items || []) queried.push(item.attributes.sk.s)
    if (!page.last_evaluated_key || Object.keys(page.last_evaluated_key).length === 0) break
    start = page.last_evaluated_key
  }
  if (queried.length !== LINES || queried[0] !== line(0) || queried[LINES - 1] !== line(LINES - 1)) {
    fail('query', JSON.stringify(queried))
  }

  // parallel scan: one stream, pages of every segment, each segment ends with segment_done.
  const scanned = new Set()
  const done = new Set()
  let messages = 0
  await new Promise((resolve, reject) => {
    const stream = client.ParallelScan({
      table_name: args.table, total_segments: 4, page_limit: 5,
      filter_expression: 'pk = :pk', expression_attribute_values: { ':pk': { s: pk } },
    }, { deadline: Date.now() + 60000 })
    stream.on('data', (page) => {
      messages++
      for (const item of page.items || []) scanned.add(item.attributes.sk.s)
      if (page.segment_done) done.add(page.segment || 0)
    })
    stream.on('error', reject)
    stream.on('end', resolve)
  }).catch((e) => fail('parallel scan', e.message))
  if (scanned.size !== LINES || done.size !== 4) fail('parallel scan', `${scanned.size} items, segments done ${[...done]}`)

  // conditional failure: FAILED_PRECONDITION with ErrorInfo and the old item decoded.
  let error
  try {
    await call(client, 'PutItem', {
      table_name: args.table,
      item: { pk: { s: pk }, sk: { s: line(3) } },
      condition_expression: 'attribute_not_exists(pk)',
      return_values_on_condition_check_failure: 'RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD',
    })
  } catch (e) {
    error = e
  }
  if (!error || error.code !== grpc.status.FAILED_PRECONDITION) fail('condition', `want FAILED_PRECONDITION, got ${error && error.code}`)
  const details = decodeStatusDetails(root, error)
  const info = details.find((d) => d.typeName === 'google.rpc.ErrorInfo')
  const failure = details.find((d) => d.typeName === 'dynamo_gateway.v1.ConditionalCheckFailure')
  const reason = info && info.message.reason
  const awsCode = info && info.message.metadata.aws_error_code
  const oldQty = failure && failure.message.item.qty.n
  if (reason !== 'ConditionalCheck.ConditionFailed' || awsCode !== 'ConditionalCheckFailedException' || oldQty !== '3') {
    fail('condition', `details: ${JSON.stringify(details)}`)
  }

  client.close()
  process.stdout.write(JSON.stringify({
    language: 'node', put: LINES, query_items: queried.length, query_pages: pages,
    scan_items: scanned.size, scan_messages: messages, segments_done: done.size,
    error_reason: reason, aws_error_code: awsCode, old_item_qty: oldQty, status_message: error.details,
  }) + '\n')
}

main().catch((e) => fail('unexpected', e.stack || String(e)))
