"""Fake platform servers for adapter and end-to-end tests: real local HTTP servers."""
