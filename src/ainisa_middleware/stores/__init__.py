"""Places businesses, widgets and secrets can live once they outgrow a dict.

Each store is its own module with its own extra, imported by name so that
``import ainisa_middleware`` never loads a database driver:
:mod:`ainisa_middleware.stores.sql` (``pip install "ainisa-middleware[sql]"``).
"""

from __future__ import annotations
