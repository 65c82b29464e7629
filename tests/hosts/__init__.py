"""Tests that run the middleware under real servers, on 127.0.0.1."""
