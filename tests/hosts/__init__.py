"""Tests that run the middleware under a real server in its own process."""
