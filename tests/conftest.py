from __future__ import annotations

# The package's own pytest11 plugin is disabled in pyproject.toml ("-p no:ainisa")
# so that it is imported here, after coverage has started, and measured.
pytest_plugins = ["pytester", "ainisa_middleware.pytest_plugin"]
