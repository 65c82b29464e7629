"""Benchmarks for ainisa-middleware: in-process drivers, uvicorn under wrk, resolver costs.

Run ``make bench`` (or ``python -m bench``); see ``docs/performance.md``.
Nothing here is imported by the package.
"""
