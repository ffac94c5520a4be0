"""Tests of `proxy.telemetry` (a package so its module names cannot collide with other
test folders')."""
