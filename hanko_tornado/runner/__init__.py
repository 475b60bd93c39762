"""Running a Tornado application in production: stopping without losing a request, bounded requests, workers.

``server.py`` is the example application; this package runs it (its ``__main__`` calls
:func:`~hanko_tornado.runner.command.main`):

- :mod:`~hanko_tornado.runner.command`: ``python server.py``: listen, then one process or supervised workers;
- :mod:`~hanko_tornado.runner.environment`: its settings from the command line, the environment and ``.env``;
- :mod:`~hanko_tornado.runner.dev`: ``--dev``, the embedded stand-in for Hanko and its banner;
- :mod:`~hanko_tornado.runner.operator_routes`: ``/healthz``, ``/readyz`` and ``/metrics``;
- :mod:`~hanko_tornado.runner.options`: the settings from the environment (stop sequence, request bounds);
- :mod:`~hanko_tornado.runner.graceful`: an HTTP server that drains and refuses oversized requests;
- :mod:`~hanko_tornado.runner.serve`: one process serving until it is told to stop;
- :mod:`~hanko_tornado.runner.supervisor`: ``--processes``, rolling restarts;
- :mod:`~hanko_tornado.runner.keys_file`: a sealed copy of the key set for workers started in an outage.
"""
