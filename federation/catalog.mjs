// A small catalog subgraph for federation tests and demos.
//
// It owns the fields the recommendations subgraph does not: User.name/country and the
// item entity's title/category/price. The item entity's type name, key field and key
// scalar come from the environment so the same catalog can play `Item @key(fields: "id")`
// or `Product @key(fields: "sku")`. Items are the embedded engine's own: at start-up the
// catalog runs `python -m local_personalize items --format json` (the demo generator, or
// CATALOG_RESOURCES' datasets), so a title, category or price seen through the gateway is
// the one Personalize filters and metadata use. Users are generated here (deterministic).
//
// Usage: CATALOG_PORT=4002 node federation/catalog.mjs   (or: node federation/catalog.mjs --port 4002)
// Env:   CATALOG_PORT (default 4002; 0 picks a free port), CATALOG_ITEM_TYPE (Item),
//        CATALOG_ITEM_KEY (id), CATALOG_ITEM_KEY_TYPE (ID), CATALOG_ITEM_QUERY (item type name
//        with a lower-case first letter: `item`, `product`), CATALOG_PYTHON (the repository's
//        .venv/bin/python), CATALOG_RESOURCES (a local_personalize resources file; default:
//        the built-in demo).

import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const USER_COUNT = 5000;
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'JP', 'BR', 'IN', 'CA'];
const FIRST_NAMES = ['Ada', 'Ben', 'Chloe', 'Dev', 'Eva', 'Femi', 'Gus', 'Hana', 'Ivo', 'Jun'];
const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;

function parsePort(argv, env) {
  const flag = argv.indexOf('--port');
  const raw = flag >= 0 ? argv[flag + 1] : argv.find((a) => /^\d+$/.test(a)) ?? env.CATALOG_PORT ?? '4002';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`invalid port: ${raw}`);
  }
  return port;
}

function entityConfig(env) {
  const typeName = env.CATALOG_ITEM_TYPE || 'Item';
  const keyField = env.CATALOG_ITEM_KEY || 'id';
  const keyType = env.CATALOG_ITEM_KEY_TYPE || 'ID';
  const queryField = env.CATALOG_ITEM_QUERY || typeName[0].toLowerCase() + typeName.slice(1);
  for (const [what, value] of Object.entries({ typeName, keyField, keyType, queryField })) {
    if (!GRAPHQL_NAME.test(value)) throw new Error(`${what} is not a GraphQL name: ${value}`);
  }
  if (typeName === 'User') throw new Error('CATALOG_ITEM_TYPE must not be User (the catalog owns User too)');
  return { typeName, keyField, keyType, queryField };
}

// Ids look like `item-0042` / `user-0042`; anything else (or out of range) is unknown.
function numberOf(id, prefix, count) {
  if (typeof id !== 'string') return null;
  const match = new RegExp(`^${prefix}-(\\d{4})$`).exec(id);
  if (!match) return null;
  const n = Number(match[1]);
  return n >= 1 && n <= count ? n : null;
}

// The engine's items: { id, title, category, price } (null where the dataset lacks a column).
async function loadItems(env) {
  const python = env.CATALOG_PYTHON || path.join(REPO_ROOT, '.venv', 'bin', 'python');
  const args = ['-m', 'local_personalize', 'items', '--format', 'json'];
  if (env.CATALOG_RESOURCES) args.push('--resources', path.resolve(env.CATALOG_RESOURCES));
  let stdout;
  try {
    ({ stdout } = await promisify(execFile)(python, args, { cwd: REPO_ROOT, maxBuffer: 1 << 30 }));
  } catch (err) {
    // The command's own one-line error, or why the interpreter could not run at all.
    const said = (err.stderr || '').trim().split('\n').pop();
    const hint = err.code === 'ENOENT' ? ' (run `make .venv/.synced`, or set CATALOG_PYTHON)' : '';
    throw new Error(`${python} ${args.join(' ')}: ${said || err.message}${hint}`);
  }
  return new Map(JSON.parse(stdout).items.map((item) => [item.id, item]));
}

function userFor(id) {
  const n = numberOf(id, 'user', USER_COUNT);
  if (n === null) return null;
  return {
    id,
    name: `${FIRST_NAMES[n % FIRST_NAMES.length]} ${String(n).padStart(4, '0')}`,
    country: COUNTRIES[n % COUNTRIES.length],
  };
}

function typeDefsFor({ typeName, keyField, keyType, queryField }) {
  return parse(`
    extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])

    type Query {
      user(id: ID!): User
      users(ids: [ID!]!): [User]!
      ${queryField}(${keyField}: ${keyType}!): ${typeName}
    }

    type User @key(fields: "id") {
      id: ID!
      name: String!
      country: String
    }

    type ${typeName} @key(fields: "${keyField}") {
      ${keyField}: ${keyType}!
      title: String
      category: String
      price: Float
    }
  `);
}

function resolversFor({ typeName, keyField, queryField }, items) {
  // Unknown keys resolve to a null entity: the gateway reports it, the catalog never throws.
  const item = (key) => {
    const found = items.get(key);
    return found ? { [keyField]: found.id, title: found.title, category: found.category, price: found.price } : null;
  };
  return {
    Query: {
      user: (_root, { id }) => userFor(id),
      users: (_root, { ids }) => ids.map(userFor),
      [queryField]: (_root, args) => item(args[keyField]),
    },
    User: {
      __resolveReference: (ref) => userFor(ref.id),
    },
    [typeName]: {
      __resolveReference: (ref) => item(ref[keyField]),
    },
  };
}

async function main() {
  const config = entityConfig(process.env);
  const port = parsePort(process.argv.slice(2), process.env);
  const items = await loadItems(process.env);
  const schema = buildSubgraphSchema([{ typeDefs: typeDefsFor(config), resolvers: resolversFor(config, items) }]);
  // Inline tracing (ftv1) is for Apollo's usage reporting; it is off so the only output is the ready line.
  const server = new ApolloServer({
    schema,
    plugins: [ApolloServerPluginInlineTraceDisabled()],
    includeStacktraceInErrorResponses: false,
  });
  const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port } });
  console.log(`catalog listening on ${url.replace(/\/$/, '')}/graphql`);
}

main().catch((err) => {
  console.error(`catalog failed to start: ${err.message}`);
  process.exit(1);
});
