"""Bazel's --execution_log_json_file, read into one dict per spawn."""

from __future__ import annotations

import json
import pathlib


def read_execution_log(path: pathlib.Path) -> list[dict]:
    """The log is a stream of concatenated JSON objects, not one array."""
    text, decoder, spawns, pos = path.read_text(), json.JSONDecoder(), [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos == len(text):
            return spawns
        spawn, pos = decoder.raw_decode(text, pos)
        spawns.append(spawn)
