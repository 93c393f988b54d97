// Compose a supergraph from running subgraphs, with two independent composers.
//
// Apollo's `@apollo/composition` produces the supergraph the gateway runs; The Guild's
// `@theguild/federation-composition` (what Hive Gateway uses) is a second opinion that is
// stricter about some things (e.g. it rejects federation @link versions newer than v2.9).
// A schema that passes both composes for either vendor's gateway.
//
// Usage:
//   node federation/compose.mjs [--out supergraph.graphql] [--strict-hints] [--wait SECONDS]
//        name=http://127.0.0.1:4001/graphql name2=path/to/subgraph.graphql ...
// A value starting with http:// or https:// is queried for `{ _service { sdl } }`; anything
// else is read as a file holding the subgraph SDL (its routing URL is then `http://NAME.invalid`).
//
// Output: every error and hint on stderr; Apollo's supergraph SDL to --out (removed when
// Apollo's composition fails);
// last line on stdout: {"errors":N,"hints":N,"guildErrors":N}.
// Exit status: 0 when both composers succeed (and, with --strict-hints, Apollo gives no hint);
// 1 on composition errors or hints under --strict-hints; 2 on bad usage or an unreachable subgraph.

import { readFile, rm, writeFile } from 'node:fs/promises';
import { composeServices as apolloCompose } from '@apollo/composition';
import { composeServices as guildCompose } from '@theguild/federation-composition';
import { parse } from 'graphql';

const USAGE =
  'usage: node federation/compose.mjs [--out FILE] [--strict-hints] [--wait SECONDS] name=URL|FILE ...';

class UsageError extends Error {}

function parseArgs(argv) {
  const options = { out: null, strictHints: false, waitSeconds: 0, subgraphs: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--out') {
      options.out = argv[++i];
      if (!options.out) throw new UsageError('--out needs a file name');
    } else if (arg === '--strict-hints') {
      options.strictHints = true;
    } else if (arg === '--wait') {
      options.waitSeconds = Number(argv[++i]);
      if (!(options.waitSeconds >= 0)) throw new UsageError('--wait needs a number of seconds');
    } else if (arg === '-h' || arg === '--help') {
      throw new UsageError('');
    } else if (arg.includes('=') && !arg.startsWith('-')) {
      const at = arg.indexOf('=');
      const name = arg.slice(0, at);
      const source = arg.slice(at + 1);
      if (!/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) || !source) throw new UsageError(`bad subgraph: ${arg}`);
      if (options.subgraphs.some((s) => s.name === name)) throw new UsageError(`duplicate subgraph: ${name}`);
      options.subgraphs.push({ name, source });
    } else {
      throw new UsageError(`unknown argument: ${arg}`);
    }
  }
  if (options.subgraphs.length === 0) throw new UsageError('no subgraphs given');
  return options;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// SUBGRAPH_SECRET (header SUBGRAPH_SECRET_HEADER, default x-subgraph-secret): the shared
// secret a subgraph configured with server.shared_secret requires.
function secretHeaders(env = process.env) {
  if (!env.SUBGRAPH_SECRET) return {};
  return { [env.SUBGRAPH_SECRET_HEADER || 'x-subgraph-secret']: env.SUBGRAPH_SECRET };
}

async function fetchSdl(url, waitSeconds) {
  const deadline = Date.now() + waitSeconds * 1000;
  for (;;) {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json', ...secretHeaders() },
        body: JSON.stringify({ query: '{ _service { sdl } }' }),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (err) {
      // Only "not up yet" is worth waiting for; everything else is reported at once.
      if (Date.now() < deadline) {
        await sleep(200);
        continue;
      }
      throw new Error(`${url}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
    }
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`${url}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
    }
    const sdl = body?.data?._service?.sdl;
    if (typeof sdl !== 'string') {
      const why = body?.errors?.map((e) => e.message).join('; ') || `HTTP ${response.status}`;
      throw new Error(`${url}: no _service.sdl (${why})`);
    }
    return sdl;
  }
}

async function loadServices(subgraphs, waitSeconds) {
  return Promise.all(
    subgraphs.map(async ({ name, source }) => {
      const isUrl = /^https?:\/\//.test(source);
      const sdl = isUrl ? await fetchSdl(source, waitSeconds) : await readFile(source, 'utf8');
      const url = isUrl ? source : `http://${name}.invalid/graphql`;
      return { name, url, sdl };
    }),
  );
}

function describeError(composer, err) {
  const code = err.extensions?.code ?? 'ERROR';
  return `${composer} error ${code}: ${err.message}`;
}

function composeBoth(services) {
  // Each composer gets its own parsed documents: composition may annotate AST nodes.
  const apollo = apolloCompose(services.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));
  const guild = guildCompose(services.map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) })));

  const apolloErrors = apollo.errors ?? [];
  const hints = apollo.hints ?? [];
  const guildErrors = guild.errors ?? [];

  for (const err of apolloErrors) console.error(describeError('apollo', err));
  for (const hint of hints) console.error(`apollo hint ${hint.definition.code}: ${hint.message}`);
  for (const err of guildErrors) console.error(describeError('guild', err));

  return { apollo, apolloErrors, hints, guildErrors };
}

async function run() {
  let options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) console.error(`compose: ${err.message}`);
    console.error(USAGE);
    return 2;
  }

  let services;
  try {
    services = await loadServices(options.subgraphs, options.waitSeconds);
  } catch (err) {
    console.error(`compose: cannot load subgraph SDL: ${err.message}`);
    return 2;
  }

  const { apollo, apolloErrors, hints, guildErrors } = composeBoth(services);
  if (options.out) {
    // A failed composition must not leave an older supergraph behind for a gateway to pick up.
    if (apollo.supergraphSdl) {
      const sdl = apollo.supergraphSdl.endsWith('\n') ? apollo.supergraphSdl : `${apollo.supergraphSdl}\n`;
      await writeFile(options.out, sdl);
    } else {
      await rm(options.out, { force: true });
    }
  }
  console.log(JSON.stringify({ errors: apolloErrors.length, hints: hints.length, guildErrors: guildErrors.length }));

  const failed = apolloErrors.length > 0 || guildErrors.length > 0 || (options.strictHints && hints.length > 0);
  return failed ? 1 : 0;
}

process.exitCode = await run();
