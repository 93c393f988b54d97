// An Apollo Gateway over a supergraph file, for integration tests and local demos.
//
// The supergraph comes from federation/compose.mjs (`--out`); the gateway routes to the
// subgraph URLs recorded in it. Nothing is forwarded to subgraphs beyond the operation
// itself: no client headers, no tracing headers.
//
// The query plan is observable: send `x-query-plan: 1` and the response carries
//   extensions.queryPlan        the plan as Apollo prints it (prettyFormatQueryPlan)
//   extensions.queryPlanFetches [{ serviceName, path, operation }] for every fetch, in plan order
// so tests can assert how many times, and with what, each subgraph is called.
//
// Usage: GATEWAY_PORT=4000 node federation/gateway.mjs --supergraph supergraph.graphql
// Env:   GATEWAY_PORT (default 4000; 0 picks a free port), SUBGRAPH_SECRET, SUBGRAPH_SECRET_HEADER

import { readFileSync } from 'node:fs';
import { ApolloGateway, RemoteGraphQLDataSource } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { prettyFormatQueryPlan } from '@apollo/query-planner';

const USAGE = 'usage: GATEWAY_PORT=4000 node federation/gateway.mjs --supergraph FILE';
const PLAN_HEADER = 'x-query-plan';

function parseArgs(argv, env) {
  const at = argv.indexOf('--supergraph');
  const supergraph = at >= 0 ? argv[at + 1] : undefined;
  if (!supergraph) throw new Error(`--supergraph FILE is required\n${USAGE}`);
  const port = Number(env.GATEWAY_PORT ?? '4000');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid GATEWAY_PORT: ${env.GATEWAY_PORT}`);
  return { supergraph, port };
}

// Fetch nodes in plan order (depth first), flattening Sequence/Parallel/Flatten/Defer/Condition.
// `path` is the Flatten path an entity fetch writes into (`user.recommendations.items.@.item`),
// empty for root fetches.
function fetchesOf(node, out = [], path = '') {
  if (!node) return out;
  switch (node.kind) {
    case 'Fetch':
      out.push({ serviceName: node.serviceName, path, operation: node.operation });
      break;
    case 'Sequence':
    case 'Parallel':
      for (const child of node.nodes) fetchesOf(child, out, path);
      break;
    case 'Flatten':
      fetchesOf(node.node, out, node.path.join('.'));
      break;
    case 'Subscription':
      fetchesOf(node.primary, out, path);
      fetchesOf(node.rest, out, path);
      break;
    case 'Defer':
      fetchesOf(node.primary?.node, out, path);
      for (const deferred of node.deferred ?? []) fetchesOf(deferred.node, out, path);
      break;
    case 'Condition':
      fetchesOf(node.ifClause, out, path);
      fetchesOf(node.elseClause, out, path);
      break;
    default:
      break;
  }
  return out;
}

// The gateway hands its callback the same object Apollo Server created as contextValue,
// so the plan travels from the gateway to the response plugin on the request's own context.
function queryPlanPlugin() {
  return {
    async requestDidStart({ contextValue }) {
      return {
        async willSendResponse({ response }) {
          if (!contextValue.wantQueryPlan || !contextValue.queryPlan) return;
          if (response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          result.extensions = {
            ...result.extensions,
            queryPlan: prettyFormatQueryPlan(contextValue.queryPlan),
            queryPlanFetches: fetchesOf(contextValue.queryPlan.node),
          };
        },
      };
    },
  };
}

async function main() {
  const { supergraph, port } = parseArgs(process.argv.slice(2), process.env);
  const supergraphSdl = readFileSync(supergraph, 'utf8');

  const gateway = new ApolloGateway({
    supergraphSdl,
    // The gateway's own header-driven plan output (Apollo-Query-Plan-Experimental) replaces
    // response.extensions wholesale; ours is opt-in via x-query-plan and merges instead.
    __exposeQueryPlanExperimental: false,
    experimental_didResolveQueryPlan: ({ queryPlan, requestContext }) => {
      if (requestContext.context) requestContext.context.queryPlan = queryPlan;
    },
    // The operation and variables, the request id and the shared secret; nothing else
    // from the client request.
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request, context }) {
          if (context?.requestId) request.http.headers.set('x-request-id', context.requestId);
          const secret = process.env.SUBGRAPH_SECRET;
          if (secret) request.http.headers.set(process.env.SUBGRAPH_SECRET_HEADER || 'x-subgraph-secret', secret);
        },
      }),
  });

  const server = new ApolloServer({
    gateway,
    plugins: [queryPlanPlugin()],
    // Clients never see stack traces, whatever NODE_ENV says.
    includeStacktraceInErrorResponses: false,
  });
  const { url } = await startStandaloneServer(server, {
    listen: { host: '127.0.0.1', port },
    context: async ({ req }) => ({
      wantQueryPlan: req.headers[PLAN_HEADER] === '1',
      queryPlan: null,
      requestId: req.headers['x-request-id'],
    }),
  });
  console.log(`gateway listening on ${url.replace(/\/$/, '')}/graphql`);
}

main().catch((err) => {
  console.error(`gateway failed to start: ${err.message}`);
  process.exit(1);
});
