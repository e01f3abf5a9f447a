"""The plugin machinery (private): dispatch, markers, ordering, registration, entry points.

Plugin authors import ``hookimpl``, ``Plugin`` and ``plugin_name`` from ``loopkit``;
the contract they implement is ``loopkit.hookspecs``.
"""
