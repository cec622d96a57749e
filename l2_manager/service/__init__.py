"""Books as a service: `python3 main.py serve` keeps every enabled venue's books live and answers over
HTTP/JSON and a WebSocket push channel on one port (127.0.0.1:8765 by default).

    api.py      pure: a request (path, query) -> a reply (status, JSON). Parameters are checked by the
                CLI's own parsers, answers built by `answer.build_answer` and written by `document.py`,
                so an HTTP answer is the `--json` answer for the same books.
    push.py     the WebSocket channel: top-N book changes (coalesced), health changes, order events.
    server.py   websockets' server: `process_request` answers the HTTP GET routes, `/v1/stream` upgrades
                to the push channel; the bind and token rules.
    command.py  the `serve` command: sessions per symbol, the optional Redis publisher, the server.
    client.py   the client side of `buy/sell --server URL`.

Why websockets' own HTTP handling: it is already a dependency, it parses requests strictly (h11-style,
bounded line and header sizes), and it serves the push channel on the same port. Its one limit is that
every HTTP response closes the connection (no keep-alive); on loopback a new connection costs tens of
microseconds, measured in `bench/serve.py`, far below the answer itself.
"""
