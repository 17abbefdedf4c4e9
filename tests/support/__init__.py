"""Helpers the tests share: real servers on loopback, recorded collectors, console messages."""
