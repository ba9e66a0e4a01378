"""The market explorer: a local teaching page served by ``ipfl explore``.

:mod:`ipfl.explorer.compute` turns the page's form into JSON computed by the
:mod:`mechanism` package (no second implementation in JavaScript);
:mod:`ipfl.explorer.app` is the Starlette app that serves it.
"""
