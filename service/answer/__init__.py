"""Answering: retrieve → pack → prompt → generate → cite → verify → the answer object."""
