"""Count the database queries a flood of unknown widget IDs costs, with and without the index.

Usage (any database the store supports; the tables get their own prefix and are
dropped afterwards)::

    python examples/sql/measure_flood.py sqlite:////tmp/flood.db
    python examples/sql/measure_flood.py postgresql://postgres@127.0.0.1/test --ids 10000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import string
import time
import uuid

import sqlalchemy as sa

from ainisa_middleware.stores.sql import SQLResolver, SQLStore


def measure(url: str, ids: int = 10_000, widgets: int = 1_000) -> list[str]:
    """One line per (index on/off, sync/async): queries issued and time taken."""
    store = SQLStore(url, table_prefix=f"flood{uuid.uuid4().hex[:8]}_", master_key="")
    lines: list[str] = []
    try:
        store.init()
        store.add_business("shop", plan="pro")
        for n in range(widgets):
            store.add_widget(f"wid_{n}", business_id="shop")
        queries = [0]

        def count(*_: object) -> None:
            queries[0] += 1

        sa.event.listen(store.engine, "before_cursor_execute", count)
        rng = random.Random(1)
        alphabet = string.ascii_letters + string.digits
        flood = ["".join(rng.choices(alphabet, k=24)) for _ in range(ids)]
        for index in (True, False):
            resolver = SQLResolver(store, index=index)
            queries[0] = 0
            started = time.perf_counter()
            for widget_id in flood:
                resolver.resolve(widget_id)
            elapsed = time.perf_counter() - started
            lines.append(
                f"index={'on ' if index else 'off'} resolve:  {queries[0]} queries, "
                f"{elapsed * 1000:.0f} ms"
            )
            resolver = SQLResolver(store, index=index)  # a fresh cache and index

            async def asgi_path(resolver: SQLResolver = resolver) -> None:
                for widget_id in flood:  # what AinisaMiddleware does: peek, then aresolve
                    found, _ = resolver.peek(widget_id)
                    if not found:
                        await resolver.aresolve(widget_id)

            queries[0] = 0
            started = time.perf_counter()
            asyncio.run(asgi_path())
            elapsed = time.perf_counter() - started
            lines.append(
                f"index={'on ' if index else 'off'} aresolve: {queries[0]} queries, "
                f"{elapsed * 1000:.0f} ms"
            )
    finally:
        store.drop()
        store.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="database URL")
    parser.add_argument("--ids", type=int, default=10_000, help="unknown widget IDs to send")
    parser.add_argument("--widgets", type=int, default=1_000, help="widgets in the store")
    args = parser.parse_args()
    print(f"{args.ids} unknown widget IDs, {args.widgets} widgets, {args.url.split(':')[0]}")
    for line in measure(args.url, args.ids, args.widgets):
        print(line)


if __name__ == "__main__":
    main()
