"""Running a Tornado application in production: stopping without losing a request, bounded requests, workers.

``server.py`` is built on it:

- :mod:`~hanko_tornado.runner.options`: the settings from the environment (stop sequence, request bounds);
- :mod:`~hanko_tornado.runner.graceful`: an HTTP server that drains and refuses oversized requests;
- :mod:`~hanko_tornado.runner.serve`: one process serving until it is told to stop;
- :mod:`~hanko_tornado.runner.supervisor`: ``--processes``, rolling restarts;
- :mod:`~hanko_tornado.runner.keys_file`: a sealed copy of the key set for workers started in an outage.
"""
