"""Integration tests: our parsers against output of the real tools, run on this machine."""
