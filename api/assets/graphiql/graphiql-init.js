// Starts the GraphiQL playground served at GET /graphql.
//
// Queries and mutations go to POST /graphql and subscriptions to /graphql/ws with the
// graphql-transport-ws protocol, both on the origin that served the page. The headers
// typed into GraphiQL's headers editor go with every HTTP request and, for each
// subscription, in the WebSocket's connection_init payload, where the api reads the
// Authorization header.
//
// The page loads react, react-dom and graphiql as UMD bundles before this file, which
// defines the React, ReactDOM and GraphiQL globals it uses.
(function () {
  'use strict';

  var GRAPHQL_PATH = '/graphql';
  var SUBSCRIPTION_PATH = '/graphql/ws';

  var DEFAULT_QUERY = [
    '# Task Assistant GraphQL playground',
    '#',
    '# Most operations need a token. Add it in',
    '# the Headers tab below:',
    '#   { "Authorization": "Bearer <token>" }',
    '# Get an access token from the login or',
    '# register mutation.',
    '# Subscriptions send the same headers when',
    '# they open their WebSocket.',
    '#',
    '# Run with Ctrl+Enter or the run button.',
    '',
    'query {',
    '  __typename',
    '}',
    '',
  ].join('\n');

  // Returns the WebSocket URL for `path` on the page's own host, with wss: when the page
  // came over https: so that the browser does not block a mixed-content connection.
  function subscriptionUrl(path) {
    var url = new URL(path, window.location.href);
    url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.href;
  }

  // With subscriptionUrl, GraphiQL's fetcher opens a graphql-ws client for each
  // subscription and sends the headers editor's content as its connection_init payload.
  // The api does not implement incremental delivery (@defer, @stream), so HTTP requests
  // ask for plain JSON responses.
  var fetcher = GraphiQL.createFetcher({
    url: new URL(GRAPHQL_PATH, window.location.href).href,
    subscriptionUrl: subscriptionUrl(SUBSCRIPTION_PATH),
    enableIncrementalDelivery: false,
  });

  // GraphiQL 3.9 saves the headers of every run with its history entries, even with
  // "Persist headers" off, which would leave bearer tokens in localStorage. This storage
  // drops the headers from history and favorites entries and passes everything else to
  // localStorage unchanged. The headers editor keeps following that setting.
  var STORAGE_NAMESPACE = 'graphiql:';
  var HISTORY_KEYS = ['graphiql:queries', 'graphiql:favorites'];

  function withoutHeaders(value) {
    var stored;
    try {
      stored = JSON.parse(value);
    } catch (error) {
      return value;
    }
    if (stored === null || !Array.isArray(stored.queries)) {
      return value;
    }
    stored.queries.forEach(function (entry) {
      delete entry.headers;
    });
    return JSON.stringify(stored);
  }

  var storage = {
    getItem: function (key) {
      return window.localStorage.getItem(key);
    },
    setItem: function (key, value) {
      var kept = HISTORY_KEYS.indexOf(key) === -1 ? value : withoutHeaders(value);
      window.localStorage.setItem(key, kept);
    },
    removeItem: function (key) {
      window.localStorage.removeItem(key);
    },
    // Like GraphiQL's default storage, clears only GraphiQL's own keys.
    clear: function () {
      Object.keys(window.localStorage).forEach(function (key) {
        if (key.indexOf(STORAGE_NAMESPACE) === 0) {
          window.localStorage.removeItem(key);
        }
      });
    },
    get length() {
      return window.localStorage.length;
    },
  };

  var container = document.getElementById('graphiql');
  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      storage: storage,
      defaultQuery: DEFAULT_QUERY,
      defaultEditorToolsVisibility: 'headers',
    }),
  );
})();
