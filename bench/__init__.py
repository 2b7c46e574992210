"""Side-by-side download benchmark: cosfast against the official SDK and other clients.

Run it as ``cosfast bench`` or ``python -m bench`` (see bench/README.md, "Side-by-side
downloads"). Each contender runs in its own subprocess against the same local server; the
harness measures wall time, CPU of the process tree and peak RSS, verifies every byte, and
reports medians, min..max and paired ratios as JSON lines, a Markdown table and a PNG chart.
"""
