"""A complete local demo: a business website, a reference widget and a verified chat backend.

Run it with ``make demo`` or ``ainisa-middleware demo`` (install the extra first,
``pip install "ainisa-middleware[demo]"``). Nothing here is needed to use the
middleware; it exists to show the whole flow at a glance, and its browser tests
prove that flow end to end.

Importing this package imports nothing beyond the standard library: the command
line adds the ``demo`` subcommand without loading FastAPI or SQLAlchemy.
"""

from __future__ import annotations
