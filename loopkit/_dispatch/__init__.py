"""The plugin machinery (private): dispatch, markers, ordering, registration, entry points.

``plugin`` holds the Plugin base class (also ``loopkit.callbacks.Callback``),
``views`` what pluggy registers for a plugin, ``keras_callbacks`` the adapter of
Keras-style callbacks. Plugin authors import ``hookimpl``, ``Plugin`` and
``plugin_name`` from ``loopkit``; the contract they implement is ``loopkit.hookspecs``.
"""
