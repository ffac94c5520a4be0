"""Tests of `proxy.flags`: one file per module, plus end-to-end propagation."""
