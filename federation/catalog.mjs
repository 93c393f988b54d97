// A small catalog subgraph for federation tests and demos.
//
// It owns the fields the recommendations subgraph does not: User.name/country and the
// item entity's title/price. The item entity's type name, key field and key scalar come
// from the environment so the same catalog can play `Item @key(fields: "id")` or
// `Product @key(fields: "sku")`. Data is generated in code (deterministic), never read
// from disk, so every run and every machine sees the same catalog.
//
// Usage: CATALOG_PORT=4002 node federation/catalog.mjs   (or: node federation/catalog.mjs --port 4002)
// Env:   CATALOG_PORT (default 4002; 0 picks a free port), CATALOG_ITEM_TYPE (Item),
//        CATALOG_ITEM_KEY (id), CATALOG_ITEM_KEY_TYPE (ID), CATALOG_ITEM_QUERY (item type name
//        with a lower-case first letter: `item`, `product`).

import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginInlineTraceDisabled } from '@apollo/server/plugin/disabled';
import { startStandaloneServer } from '@apollo/server/standalone';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

const ITEM_COUNT = 2000;
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

function itemFor(id) {
  const n = numberOf(id, 'item', ITEM_COUNT);
  if (n === null) return null;
  // A multiplicative hash spreads prices over 1.00..99.99 without any randomness.
  const cents = ((n * 7919) % 9900) + 100;
  return { key: id, title: `Item ${n} title`, price: cents / 100 };
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
      title: String!
      price: Float!
    }
  `);
}

function resolversFor({ typeName, keyField, queryField }) {
  // Unknown keys resolve to a null entity: the gateway reports it, the catalog never throws.
  const item = (key) => {
    const found = itemFor(key);
    return found && { [keyField]: found.key, title: found.title, price: found.price };
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
  const schema = buildSubgraphSchema([{ typeDefs: typeDefsFor(config), resolvers: resolversFor(config) }]);
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
